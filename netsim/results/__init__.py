"""The results stage: what a run leaves behind and how it is shown.

records  the record types (`ResultRecord`, `PeerRecord`, `Summary`): the authority for every field
store    run ids and directories, results.jsonl, summary.json
tables   outcome labels, NAT x NAT cells, the terminal matrix table
versions versions of the software under test
report   the self-contained HTML report (`build_report`), with charts (its palette and chart)
"""
