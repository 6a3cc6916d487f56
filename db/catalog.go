package db

// EventType is one entry of the event catalogue: every event type BoohPay
// emits. Endpoint filters (enabled_events), the OpenAPI document's webhooks
// section and docs/WEBHOOKS.md are all checked against this one list.
type EventType struct {
	Name        string // e.g. "payment.succeeded"
	Object      string // the data object: "payment", "payout", "webhook_test"
	Description string
}

// Event type names.
const (
	EventPaymentPending           = "payment.pending"
	EventPaymentAuthorized        = "payment.authorized"
	EventPaymentSucceeded         = "payment.succeeded"
	EventPaymentFailed            = "payment.failed"
	EventPaymentCancelled         = "payment.cancelled"
	EventPaymentRefunded          = "payment.refunded"
	EventPaymentPartiallyRefunded = "payment.partially_refunded"
	EventPaymentDisputed          = "payment.disputed"
	EventPaymentDisputeClosed     = "payment.dispute_closed"
	EventPaymentRequiresReview    = "payment.requires_review"
	EventPayoutPending            = "payout.pending"
	EventPayoutProcessing         = "payout.processing"
	EventPayoutSucceeded          = "payout.succeeded"
	EventPayoutFailed             = "payout.failed"
	EventPayoutRequiresReview     = "payout.requires_review"
	EventWebhookTest              = "webhook.test"
)

// EventCatalogue lists every event type, in the order docs show them.
var EventCatalogue = []EventType{
	{EventPaymentPending, "payment", "A payment was created and waits for the customer."},
	{EventPaymentAuthorized, "payment", "The provider authorized the payment; funds are held, not yet captured."},
	{EventPaymentSucceeded, "payment", "The provider confirmed the money was captured (amount_received says how much)."},
	{EventPaymentFailed, "payment", "The last attempt failed; the customer may still pay, so a later payment.succeeded can follow."},
	{EventPaymentCancelled, "payment", "The payment was cancelled (by the merchant, or the provider released it)."},
	{EventPaymentRefunded, "payment", "The captured amount was refunded in full."},
	{EventPaymentPartiallyRefunded, "payment", "Part of the captured amount was refunded (amount_refunded says how much)."},
	{EventPaymentDisputed, "payment", "The customer disputed the payment (dispute_status)."},
	{EventPaymentDisputeClosed, "payment", "A dispute on the payment was closed (dispute_status)."},
	{EventPaymentRequiresReview, "payment", "The provider told us something a human must look at (review says what)."},
	{EventPayoutPending, "payout", "A payout was created."},
	{EventPayoutProcessing, "payout", "The provider is processing the payout."},
	{EventPayoutSucceeded, "payout", "The money left: the payout succeeded."},
	{EventPayoutFailed, "payout", "The payout failed."},
	{EventPayoutRequiresReview, "payout", "The provider told us something a human must look at (review says what)."},
	{EventWebhookTest, "webhook_test", "A test event sent to one endpoint on request."},
}

// EventTypeKnown reports whether name is in the catalogue.
func EventTypeKnown(name string) bool {
	for _, t := range EventCatalogue {
		if t.Name == name {
			return true
		}
	}
	return false
}
