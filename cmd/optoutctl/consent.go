package main

import (
	"fmt"

	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
)

// consentRecord is one record as a consent record, with the field names of
// the Kantara Initiative's Consent Receipt v1.1 (whose successor is ISO/IEC
// TS 27560's consent record information structure). Fields the cluster
// does not hold (language, PII categories, sensitive categories, public
// key) are given their empty values or left out, as docs/import.md lists;
// "state" (given or withdrawn) and "optoutd" are this exporter's additions.
type consentRecord struct {
	Version          string           `json:"version"`
	Jurisdiction     string           `json:"jurisdiction"`
	ConsentTimestamp int64            `json:"consentTimestamp"`
	CollectionMethod string           `json:"collectionMethod"`
	ConsentReceiptID string           `json:"consentReceiptID"`
	PIIPrincipalID   string           `json:"piiPrincipalId"`
	PIIControllers   []consentCtrl    `json:"piiControllers"`
	PolicyURL        string           `json:"policyUrl"`
	Services         []consentService `json:"services"`
	Sensitive        bool             `json:"sensitive"`
	SPICat           []string         `json:"spiCat"`
	State            string           `json:"state"`
	Optoutd          consentExtension `json:"optoutd"`
}

type consentCtrl struct {
	PIIController string `json:"piiController"`
}

type consentService struct {
	Service  string           `json:"service"`
	Purposes []consentPurpose `json:"purposes"`
}

type consentPurpose struct {
	Purpose              string   `json:"purpose"`
	PurposeCategory      []string `json:"purposeCategory"`
	ConsentType          string   `json:"consentType"`
	PIICategory          []string `json:"piiCategory"`
	PrimaryPurpose       bool     `json:"primaryPurpose"`
	Termination          string   `json:"termination"`
	ThirdPartyDisclosure bool     `json:"thirdPartyDisclosure"`
}

type consentExtension struct {
	State   string `json:"record_state"`
	Version uint64 `json:"version"`
	Source  string `json:"source"`
	Reason  string `json:"reason"`
}

// consentRecordVersion is the Kantara receipt version the shape follows.
const consentRecordVersion = "KI-CR-v1.1.0"

func consentRecordOf(r *optoutv1.Record, o exportOpts) consentRecord {
	state := "withdrawn"
	if r.State == optoutv1.State_STATE_OPTED_IN {
		state = "given"
	}
	c := consentRecord{
		Version:          consentRecordVersion,
		Jurisdiction:     o.jurisdiction,
		ConsentTimestamp: r.UpdatedAt.AsTime().Unix(),
		CollectionMethod: r.Source,
		ConsentReceiptID: fmt.Sprintf("optoutd:%s:%s:%d", r.Purpose, r.SubjectId, r.Version),
		PIIPrincipalID:   r.SubjectId,
		PIIControllers:   []consentCtrl{},
		PolicyURL:        o.policyURL,
		Services: []consentService{{Service: r.Purpose, Purposes: []consentPurpose{{
			Purpose: r.Purpose, PurposeCategory: []string{}, ConsentType: "EXPLICIT", PIICategory: []string{},
		}}}},
		SPICat:  []string{},
		State:   state,
		Optoutd: consentExtension{State: stateWord(r.State), Version: r.Version, Source: r.Source, Reason: r.Reason},
	}
	if o.controller != "" {
		c.PIIControllers = []consentCtrl{{PIIController: o.controller}}
	}
	return c
}
