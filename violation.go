package optoutd

import (
	"strconv"
	"time"
)

// ViolationKind is what was wrong with one processed event (numbered as
// optout.v1.ViolationKind).
type ViolationKind int

const (
	ViolationNone ViolationKind = iota
	// ViolationProcessedWhileOptedOut: the subject was opted out at the
	// point of processing and no ALLOW override covered it.
	ViolationProcessedWhileOptedOut
	// ViolationReceiptBeforeOptOut: as above, with an allow receipt from
	// before the opt-out (a stale decision used without fencing).
	ViolationReceiptBeforeOptOut
	// ViolationNoReceipt: the service did not ask.
	ViolationNoReceipt
	// ViolationInvalidReceipt: forged, altered, another subject's or
	// purpose's, or not a receipt.
	ViolationInvalidReceipt
	// ViolationDeniedReceipt: processed despite a deny receipt.
	ViolationDeniedReceipt
)

func (k ViolationKind) String() string {
	names := [...]string{"none", "processed_while_opted_out", "receipt_before_opt_out", "no_receipt", "invalid_receipt", "denied_receipt"}
	if k < 0 || int(k) >= len(names) {
		return "violationkind(" + strconv.Itoa(int(k)) + ")"
	}
	return names[k]
}

// Violation is one judged, stored violation. It holds the subject's
// receipt hash (ReceiptSubjectHashBytes), never its identifier.
type Violation struct {
	ID               uint64
	Service          string
	SubjectHash      []byte
	Purpose          string
	Kind             ViolationKind
	Evidence         string
	ProcessedVersion uint64
	ProcessedAt      time.Time
	DecidingVersion  uint64
	ReceiptReadIndex uint64
	ReportedAt       time.Time
	ReportVersion    uint64
	// Report is the violation's place in its batch.
	Report uint32
}

// ReportBatch is one judged ReportProcessing call, as the log records it.
type ReportBatch struct {
	Service        string
	Reports        uint32
	WithoutReceipt uint32
	Violations     []Violation
	JudgedAt       uint64
}

// ServiceScore is one service's counts over a window.
type ServiceScore struct {
	Service        string
	Reports        uint64
	Violations     uint64
	WithoutReceipt uint64
}

// Per10k is violations per 10,000 reports (0 without reports).
func (s ServiceScore) Per10k() float64 {
	if s.Reports == 0 {
		return 0
	}
	return float64(s.Violations) / float64(s.Reports) * 10000
}

// Limits of reporting.
const (
	MaxReportBatch     = 1000
	DefaultScoreWindow = 24 * time.Hour
	MaxScoreWindow     = 30 * 24 * time.Hour
)
