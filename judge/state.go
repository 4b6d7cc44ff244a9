package judge

import (
	"github.com/optoutd/optoutd"
)

// decisionAt is the subject's decision at the report's point, before
// overrides: by version, the history's StateAt; by time, the newest
// changes at or before that time, under today's definition of the purpose
// (the catalog's history is by version only).
func decisionAt(v optoutd.View, k optoutd.Key, r Report) (optoutd.CheckResult, error) {
	if r.Version != 0 {
		s, err := v.StateAt(k, r.Version)
		return s.Check, err
	}
	p, err := v.Purpose(k.Purpose)
	if err != nil {
		return optoutd.CheckResult{}, err
	}
	var all, rec optoutd.Record
	var haveAll, haveRec, erased bool
	var before uint64
	for !(haveAll && haveRec) {
		page, err := v.History(k.SubjectID, "", before, optoutd.MaxHistoryPage)
		if err != nil {
			return optoutd.CheckResult{}, err
		}
		for _, e := range page {
			before = e.Version
			if e.Time.After(r.At) {
				continue
			}
			got := optoutd.Record{Key: k, State: e.NewState, Version: e.Version, UpdatedAt: e.Time}
			if e.Purpose == optoutd.AllPurposes && !haveAll {
				all, haveAll, erased = got, true, e.Kind == optoutd.AuditErase
			}
			if e.Purpose == k.Purpose && !haveRec {
				rec, haveRec = got, true
			}
		}
		if len(page) < optoutd.MaxHistoryPage {
			break
		}
	}
	if k.Purpose == optoutd.AllPurposes {
		rec = all
	}
	return optoutd.Decide(p, all, erased, rec), nil
}
