package db

import "slices"

// The fixed vocabularies, defined once. The API validates against them,
// metrics bound their labels with them, and the SQL CHECK constraints list
// the same values (vocab_test.go compares them).

// Payment gateways (payments.gateway) and payout providers
// (payouts.provider). Stripe, Moneroo and eBilling also report through
// inbound webhooks under these names (provider_events.provider).
const (
	ProviderStripe   = "stripe"
	ProviderMoneroo  = "moneroo"
	ProviderEBilling = "ebilling"
	ProviderSandbox  = "sandbox"
	// providerShap is retired: nothing reports its payouts' outcome, so no
	// new payout may use it; rows made before keep it (and a review).
	providerShap = "shap"
)

// Gateways a payment may be created on.
var Gateways = []string{ProviderStripe, ProviderMoneroo, ProviderEBilling, ProviderSandbox}

// PayoutProviders a payout may be created on: only those something can
// move (their webhooks, or sandbox's simulate).
var PayoutProviders = []string{ProviderMoneroo, ProviderStripe, ProviderSandbox}

// PayoutProvidersRetired may still appear on old payouts.
var PayoutProvidersRetired = []string{providerShap}

// InboundProviders report status changes through webhooks
// (provider_events.provider).
var InboundProviders = []string{ProviderStripe, ProviderMoneroo, ProviderEBilling}

// Payment statuses.
const (
	PaymentPending    = "PENDING"
	PaymentAuthorized = "AUTHORIZED"
	PaymentSucceeded  = "SUCCEEDED"
	PaymentFailed     = "FAILED"
	PaymentCancelled  = "CANCELLED"
	PaymentRefunded   = "REFUNDED"
)

// PaymentStatuses are every payment status.
var PaymentStatuses = []string{PaymentPending, PaymentAuthorized, PaymentSucceeded, PaymentFailed, PaymentCancelled, PaymentRefunded}

// Payout statuses.
const (
	PayoutPending    = "PENDING"
	PayoutProcessing = "PROCESSING"
	PayoutSucceeded  = "SUCCEEDED"
	PayoutFailed     = "FAILED"
)

// PayoutStatuses are every payout status.
var PayoutStatuses = []string{PayoutPending, PayoutProcessing, PayoutSucceeded, PayoutFailed}

// Outcomes of a provider event: what the checks decided, as
// provider_events.result records it and the provider's 200 answer says.
const (
	OutcomeApplied          = "applied"           // the object changed
	OutcomeIgnored          = "ignored"           // a recorded-only event type, or the status the object already has
	OutcomeStale            = "stale"             // a backward move or a replayed old fact: nothing changed
	OutcomeDuplicate        = "duplicate"         // this provider event was already received
	OutcomeUnmatched        = "unmatched"         // no object of ours yet: parked under the provider's object id
	OutcomeAmountMismatch   = "amount_mismatch"   // the money is not ours: nothing changed, review set
	OutcomeDuplicatePayment = "duplicate_payment" // a second provider object paid a paid payment: review, a refund is owed
	OutcomeConflict         = "conflict"          // a fact we must not apply automatically (a payout failing after success): review
)

// ProviderEventOutcomes are every outcome, in the order the checks reach them.
var ProviderEventOutcomes = []string{OutcomeApplied, OutcomeIgnored, OutcomeStale, OutcomeDuplicate, OutcomeUnmatched,
	OutcomeAmountMismatch, OutcomeDuplicatePayment, OutcomeConflict}

// Objects a provider event, a review or an admin action concerns.
const (
	ObjectPayment = "payment"
	ObjectPayout  = "payout"
)

// Objects are the objects with a status.
var Objects = []string{ObjectPayment, ObjectPayout}

// Why an object is in review (review.reason).
const (
	ReviewAmountMismatch       = "amount_mismatch"              // the provider's money is not the object's
	ReviewDuplicatePayment     = "duplicate_payment"            // paid twice: a refund is owed
	ReviewCapturedAfterCancel  = "captured_after_cancel"        // money captured for a payment cancelled here
	ReviewPartialCapture       = "partial_capture"              // captured less than the amount
	ReviewRefundFailed         = "refund_failed"                // a refund was undone: the customer did not get it
	ReviewLateSuccess          = "late_success"                 // a FAILED payout's money left after all
	ReviewFailureAfterSuccess  = "failure_after_success"        // a SUCCEEDED payout reported failed: not applied
	ReviewProviderReferenceDup = "provider_reference_duplicate" // lost a duplicate provider_reference (migration)
	ReviewProviderRetired      = "provider_retired"             // a payout on a provider nothing reports for
)

// Actors: who asks for a status change. The one transition path decides
// what each may do.
type Actor string

const (
	ActorMerchant Actor = "merchant" // the merchant's API key: cancel only
	ActorProvider Actor = "provider" // an authentic provider webhook
	ActorSandbox  Actor = "sandbox"  // simulate, on sandbox objects: what a provider could do
	ActorAdmin    Actor = "admin"    // an operator's override, with a reason
)

// Admin actions (admin_actions.action).
const (
	ActionPaymentStatusOverride = "payment.status_override"
	ActionPayoutStatusOverride  = "payout.status_override"
	ActionPaymentReviewResolve  = "payment.review_resolve"
	ActionPayoutReviewResolve   = "payout.review_resolve"
)

// AdminActions are every admin action.
var AdminActions = []string{ActionPaymentStatusOverride, ActionPayoutStatusOverride, ActionPaymentReviewResolve, ActionPayoutReviewResolve}

// currencyExponents is the one table of ISO 4217 currencies we accept and
// their minor-unit exponents: amounts are integers in the minor unit, and
// every provider amount is converted through it. XAF and XOF have none.
var currencyExponents = map[string]int{
	"XAF": 0, "XOF": 0, "NGN": 2, "GHS": 2, "GNF": 0, "CDF": 2, "RWF": 0,
	"KES": 2, "UGX": 0, "TZS": 2, "ZMW": 2, "ZAR": 2, "MAD": 2, "EGP": 2,
	"MGA": 2, "SLE": 2, "LRD": 2, "GMD": 2, "CVE": 2, "MRU": 2, "BIF": 0,
	"ETB": 2, "DZD": 2, "TND": 3, "AOA": 2, "MZN": 2, "MWK": 2, "BWP": 2,
	"NAD": 2, "SZL": 2, "LSL": 2, "MUR": 2, "SCR": 2, "KMF": 0, "DJF": 0,
	"USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "JPY": 0, "CNY": 2,
	"AED": 2, "SAR": 2, "INR": 2,
}

// CurrencyKnown reports whether code is a currency we accept (upper case).
func CurrencyKnown(code string) bool {
	_, ok := currencyExponents[code]
	return ok
}

// CurrencyExponent returns the number of minor-unit digits of a known
// currency (0 for XAF: 5000 means 5000 FCFA).
func CurrencyExponent(code string) (int, bool) {
	e, ok := currencyExponents[code]
	return e, ok
}

// Currencies lists the accepted currency codes, sorted.
func Currencies() []string {
	codes := make([]string, 0, len(currencyExponents))
	for c := range currencyExponents {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	return codes
}
