package cluster

// Log keys used by this package. Constants, so a grep finds every use.
const (
	LogKeyComponent = "component"
	LogKeySubsystem = "subsystem"
	LogKeyNode      = "node"
	LogKeyTerm      = "term"
	LogKeyIndex     = "index"
	LogKeyLeader    = "leader"
	LogKeyAddr      = "addr"
	LogKeyErr       = "err"
)
