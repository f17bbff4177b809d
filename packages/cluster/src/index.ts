// Filled in as the WAN simulator and LocalCluster move here from @georelay/relay.
export {}
