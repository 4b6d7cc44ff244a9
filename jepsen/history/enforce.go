package history

// Operations of the enforcement workload. Key is the subject (for Report
// the service); Enf carries what the enforcement checker needs.
const (
	// Gate is a producer's client.Gate with a receipt (a linearizable
	// Check).
	Gate Type = "gate"
	// Fence is a consumer's client.Fence of one delivery (ShouldProcess).
	Fence Type = "fence"
	// Process is a delivery processed without a fence: the sloppy
	// service's planted violations, or every delivery of the negative
	// control's services. Call = Return = the moment of processing.
	Process Type = "process"
	// OptOut is a blind Set of the subject to opted_out.
	OptOut Type = "opt-out"
	// OptIn is a re-opt-in: a Set to opted_in with Expected = the version
	// of the opt-out it replaces (deny wins: a blind opt-in is refused).
	OptIn Type = "opt-in"
	// StateRead is a Get a flipper makes to relearn a subject's state.
	StateRead Type = "state-read"
	// Override is a CreateOverride (ALLOW, one subject, short expiry).
	Override Type = "override"
	// Report is one ReportProcessing batch of a service.
	Report Type = "report"
	// ReadIndex is the sloppy service's OptOutService.ReadIndex, the point
	// it reports for an unfenced processing.
	ReadIndex Type = "read-index"
	// ListViolations is the harness's final listing of one service's
	// stored violations (Final), after healing; Enf.Stored holds the ids.
	ListViolations Type = "list-violations"
)

// Roles of an event: what it is and how a correct system must treat it.
const (
	// RoleGenuine: a producer's event with the allow receipt Gate gave it.
	RoleGenuine = "genuine"
	// RoleFalseSubject: a subject id the API refuses (empty, too long, not
	// UTF-8); Gate must fail and nothing may process it.
	RoleFalseSubject = "false-subject"
	// RoleFalsePurpose: a purpose that is not defined; Gate must fail, the
	// event travels without a receipt, and nothing may process it.
	RoleFalsePurpose = "false-purpose"
	// RoleForgedBody: a genuine receipt whose body was altered, signature
	// kept.
	RoleForgedBody = "forged-body"
	// RoleForgedKey: a genuine receipt's body signed with a random key
	// under the cluster's key id.
	RoleForgedKey = "forged-key"
	// RoleForgedUnknownKey: signed with a random key under a key id the
	// cluster never had.
	RoleForgedUnknownKey = "forged-unknown-key"
	// RoleForgedSubject: a genuine receipt of another subject.
	RoleForgedSubject = "forged-subject"
	// RolePlantedUnfenced: the sloppy service processes, without a fence,
	// an event whose subject opted out (acknowledged) after its receipt.
	RolePlantedUnfenced = "planted-unfenced"
	// RolePlantedNoReceipt: the sloppy service processes an event and
	// reports it without its receipt.
	RolePlantedNoReceipt = "planted-no-receipt"
	// RolePlantedForged: the sloppy service processes an event that
	// carries a forged receipt.
	RolePlantedForged = "planted-forged"
)

// IsForged reports whether role is an event with a forged receipt that a
// correct fence must refuse.
func IsForged(role string) bool {
	switch role {
	case RoleForgedBody, RoleForgedKey, RoleForgedUnknownKey, RoleForgedSubject:
		return true
	}
	return false
}

// IsFalse reports whether role is a false event (refused at the gate).
func IsFalse(role string) bool { return role == RoleFalseSubject || role == RoleFalsePurpose }

// IsPlanted reports whether role is one of the sloppy service's planted
// violations.
func IsPlanted(role string) bool {
	return role == RolePlantedUnfenced || role == RolePlantedNoReceipt || role == RolePlantedForged
}

// Enforce is the enforcement part of an op.
type Enforce struct {
	// Event numbers the event (0: not about one event); Delivery numbers
	// its deliveries from 1.
	Event    int    `json:"event,omitempty"`
	Delivery int    `json:"delivery,omitempty"`
	Role     string `json:"role,omitempty"`
	Service  string `json:"service,omitempty"`
	Purpose  string `json:"purpose,omitempty"`
	// Gate: the decision was allow.
	Allow bool `json:"allow,omitempty"`
	// Fence: "process" or "discard", the discard reason, the fence's read
	// index and the version of the record that decided now.
	Verdict        string `json:"verdict,omitempty"`
	Reason         string `json:"reason,omitempty"`
	ReadIndex      uint64 `json:"read_index,omitempty"`
	CurrentVersion uint64 `json:"current_version,omitempty"`
	// ReceiptIndex is the read index of the receipt the event carried.
	ReceiptIndex uint64 `json:"receipt_index,omitempty"`
	// Processed: the service processed the delivery (a Fence that said
	// PROCESS, or a Process op).
	Processed bool `json:"processed,omitempty"`
	// Override: the id a CreateOverride got (0 if unknown), its expiry on
	// the run clock (ns since the start) and the override a decision was
	// made under.
	OverrideID uint64 `json:"override_id,omitempty"`
	ExpiresAt  int64  `json:"expires_at,omitempty"`
	// Reports: what a Report batch said about each processing it carried.
	Reports []ReportEntry `json:"reports,omitempty"`
	// Stored: the violation ids a ListViolations found.
	Stored []uint64 `json:"stored,omitempty"`
}

// ReportEntry is one report of a batch: the op index of the processing it
// reports and the cluster's verdict (a ViolationKind name, "" for none;
// only meaningful when the batch is OK).
type ReportEntry struct {
	Op          int    `json:"op"`
	Kind        string `json:"kind,omitempty"`
	Evidence    string `json:"evidence,omitempty"`
	ViolationID uint64 `json:"violation_id,omitempty"`
}
