package main

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcd's side of the enforcement workloads: every read is the check
// workload's linearizable Get of the pre-loaded key; a report is a Put of
// about a report's bytes next to it, a batch one Txn of as many Puts.

func (o etcdOps) Prepare(context.Context, string, []string) error { return nil }

func (o etcdOps) Gate(ctx context.Context, subject string) error { return o.Check(ctx, subject) }

func (o etcdOps) GateReceipt(ctx context.Context, subject string) error {
	return o.Check(ctx, subject)
}

func (o etcdOps) CachedGate(ctx context.Context, subject string) error {
	return o.Check(ctx, subject)
}

func (o etcdOps) Fence(ctx context.Context, subject string) error { return o.Check(ctx, subject) }

func (o etcdOps) CacheCounts() (CacheCounts, bool) { return CacheCounts{}, false }

// etcdReportKey keeps reports apart from the pre-loaded records.
func etcdReportKey(subject string) string { return "report/" + reportService + "/" + subject }

// reportValue is about what a ProcessingReport carries: subject, purpose,
// processed version and a receipt (about 200 bytes).
var reportValue = "purpose=" + enforcePurpose + ";processed_version=12345678;receipt=optr1." + strings.Repeat("x", 200)

// Report is one Put, or one Txn of Puts (subjects are distinct: etcd
// refuses a Txn that puts one key twice).
func (o etcdOps) Report(ctx context.Context, subjects []string) error {
	if len(subjects) == 1 {
		_, err := o.c.Put(ctx, etcdReportKey(subjects[0]), reportValue)
		return err
	}
	puts := make([]clientv3.Op, len(subjects))
	for i, s := range subjects {
		puts[i] = clientv3.OpPut(etcdReportKey(s), reportValue)
	}
	r, err := o.c.Txn(ctx).Then(puts...).Commit()
	if err != nil {
		return err
	}
	if len(r.Responses) != len(subjects) {
		return fmt.Errorf("bench: Txn of %d Puts answered %d", len(subjects), len(r.Responses))
	}
	return nil
}
