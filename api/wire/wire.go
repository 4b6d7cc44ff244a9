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
