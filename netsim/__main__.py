from netsim.cli import main

raise SystemExit(main())
