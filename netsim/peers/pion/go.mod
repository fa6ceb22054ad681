module netsim-pion
