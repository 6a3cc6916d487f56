package api_test

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
)

// TestWebhooksDocCoversTheCatalogue: docs/WEBHOOKS.md documents every event
// type of the catalogue, in its order, each with an example body of the
// right shape.
func TestWebhooksDocCoversTheCatalogue(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/WEBHOOKS.md")
	require.NoError(t, err)
	entries := regexp.MustCompile("(?ms)^### `([a-z_.]+)`\n\n(.*?)\n\n```json\n(.*?)^```").FindAllStringSubmatch(string(doc), -1)
	require.Len(t, entries, len(db.EventCatalogue))
	for i, et := range db.EventCatalogue {
		name, description, example := entries[i][1], entries[i][2], entries[i][3]
		require.Equal(t, et.Name, name)
		require.Equal(t, et.Description, description, name)
		var body struct {
			ID        string `json:"id"`
			Event     string `json:"event"`
			Timestamp string `json:"timestamp"`
			Data      struct {
				Object string `json:"object"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(example), &body), name)
		require.Equal(t, et.Name, body.Event)
		require.Equal(t, et.Object, body.Data.Object, name)
		require.NotEmpty(t, body.ID, name)
		require.NotEmpty(t, body.Timestamp, name)
	}
}
