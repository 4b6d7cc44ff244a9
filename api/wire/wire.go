package wire

// Headers of the schema-version gate.
const (
	// HeaderSchemaVersion: on a request, the schema version the client was
	// built against; on a response, the one the server speaks.
	HeaderSchemaVersion = "Optout-Schema-Version"
	// HeaderCatalogVersion: on a response, the catalog version the answer
	// was computed with.
	HeaderCatalogVersion = "Optout-Catalog-Version"
)

// HeaderBackupIndex is the response trailer that carries the applied index
// of a completed backup.
const HeaderBackupIndex = "Optout-Backup-Index"

// HeaderNodeRemoved marks an error from a node that was removed from the
// cluster: the request was not applied, and another node should serve it.
const HeaderNodeRemoved = "Optout-Node-Removed"

// HeaderRequestID carries a request id: taken from the request when it is
// sane, generated otherwise, echoed on the response and in every log line.
const HeaderRequestID = "Optout-Request-Id"

// HeaderLeader is on every API response: the client API address (as the
// leader registered it) of the node this node believes leads, when it
// knows one. A hint, not a promise: a client may send writes there to save
// the forwarding hop, and every node still accepts every write.
const HeaderLeader = "Optout-Leader"
