package db

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// APIKey is one of a merchant's API keys as it may be shown: never the key
// itself, which is stored only as a SHA-256 hash (keys carry 192 random
// bits, so a plain hash is enough), but its first characters.
type APIKey struct {
	ID         uuid.UUID  `db:"id"`
	MerchantID uuid.UUID  `db:"merchant_id"`
	Name       *string    `db:"name"`
	Prefix     string     `db:"prefix"`
	CreatedAt  time.Time  `db:"created_at"`
	LastUsedAt *time.Time `db:"last_used_at"`
	RevokedAt  *time.Time `db:"revoked_at"`
}

// MarshalJSON renders a key for the API.
func (k *APIKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(apiKeyJSON{k.ID, "api_key", k.Name, k.Prefix, k.CreatedAt, k.LastUsedAt, k.RevokedAt})
}

type apiKeyJSON struct {
	ID         uuid.UUID  `json:"id"`
	Object     string     `json:"object"`
	Name       *string    `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// NewAPIKey is a key just created: the only time Key, in clear, exists.
type NewAPIKey struct {
	APIKey
	Key string
}

// MarshalJSON renders a new key for the API: the key object plus key.
func (k *NewAPIKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		apiKeyJSON
		Key string `json:"key"`
	}{apiKeyJSON{k.ID, "api_key", k.Name, k.Prefix, k.CreatedAt, k.LastUsedAt, k.RevokedAt}, k.Key})
}

const (
	// APIKeyPrefix starts every API key.
	APIKeyPrefix = "bp_"
	// apiKeyShownLen is how much of a key its prefix keeps: "bp_" and six
	// characters, enough to tell a merchant's keys apart, far too few to guess.
	apiKeyShownLen = len(APIKeyPrefix) + 6
	// MaxAPIKeys bounds a merchant's active keys.
	MaxAPIKeys = 20
)

var apiKeyColumns = columnsOf[APIKey]()

func scanAPIKey(row pgx.Row) (*APIKey, error) {
	var k APIKey
	if err := row.Scan(apiKeyColumns.dest(&k)...); err != nil {
		return nil, notFound(err)
	}
	return &k, nil
}

// apiKeyCreateTx stores a new key's hash and returns the key, in clear this once.
func apiKeyCreateTx(ctx context.Context, tx pgx.Tx, merchantID uuid.UUID, name *string) (*NewAPIKey, error) {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	key := APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	hash := sha256.Sum256([]byte(key))
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	k, err := scanAPIKey(tx.QueryRow(ctx, `INSERT INTO api_keys (id, merchant_id, name, prefix, key_hash)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+apiKeyColumns.String(), id, merchantID, name, key[:apiKeyShownLen], hash[:]))
	if err != nil {
		return nil, fmt.Errorf("inserting api key: %w", err)
	}
	return &NewAPIKey{APIKey: *k, Key: key}, nil
}

// APIKeyCreate creates a key for a merchant (a merchant's own request, or
// an operator issuing one to a merchant that lost all of its own).
//
// Returns ErrNotFound for an unknown merchant, or an EConflict error when
// the merchant already has MaxAPIKeys active keys.
func (s *Store) APIKeyCreate(ctx context.Context, merchantID uuid.UUID, name *string) (*NewAPIKey, error) {
	var out *NewAPIKey
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		active, err := apiKeyLockActiveTx(ctx, tx, merchantID)
		if err != nil {
			return err
		}
		if active >= MaxAPIKeys {
			return Errorf(EConflict, "a merchant may have at most %d active API keys: revoke one first", MaxAPIKeys)
		}
		out, err = apiKeyCreateTx(ctx, tx, merchantID, name)
		return err
	})
	return out, err
}

// apiKeyLockActiveTx locks the merchant's row, so key creations and
// revocations of one merchant run one at a time (two concurrent revocations
// cannot both see another active key and leave none), and counts its active
// keys. Returns ErrNotFound for an unknown merchant.
func apiKeyLockActiveTx(ctx context.Context, tx pgx.Tx, merchantID uuid.UUID) (int, error) {
	// Two statements: the count must be read after the lock is held. One
	// statement would count from the snapshot it took before waiting for the
	// lock, and two concurrent revocations of a merchant's last two keys
	// would both see two.
	var one int
	if err := tx.QueryRow(ctx, `SELECT 1 FROM merchants WHERE id = $1 FOR UPDATE`, merchantID).Scan(&one); err != nil {
		return 0, notFound(err)
	}
	var active int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE merchant_id = $1 AND revoked_at IS NULL`,
		merchantID).Scan(&active); err != nil {
		return 0, fmt.Errorf("counting api keys: %w", err)
	}
	return active, nil
}

// APIKeyList returns a page of the merchant's active keys, newest first.
func (s *Store) APIKeyList(ctx context.Context, merchantID uuid.UUID, params ListParams) ([]*APIKey, bool, error) {
	query := `SELECT ` + apiKeyColumns.String() + ` FROM api_keys WHERE merchant_id = $1 AND revoked_at IS NULL`
	args := []any{merchantID}
	if params.StartingAfter != nil {
		// Keys made before ids were time-ordered have random ids: page by creation time.
		query += ` AND (created_at, id) < (SELECT created_at, id FROM api_keys WHERE id = $2 AND merchant_id = $1)`
		args = append(args, *params.StartingAfter)
	}
	args = append(args, params.Limit+1)
	query += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT $%d`, len(args))
	rows, err := s.Pool.Query(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("listing api keys: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*APIKey, error) { return scanAPIKey(row) })
	if err != nil {
		return nil, false, fmt.Errorf("listing api keys: %w", err)
	}
	hasMore := len(items) > params.Limit
	if hasMore {
		items = items[:params.Limit]
	}
	return items, hasMore, nil
}

// ErrLastAPIKey refuses to revoke a merchant's last active key: the merchant
// would be locked out of its own account.
var ErrLastAPIKey = &Error{Code: EConflict,
	Message: "this is the merchant's last active API key: create another (POST /v1/api-keys) before revoking it"}

// APIKeyRevokeByID revokes one of the merchant's active keys, effective on
// the next request (authentication reads revoked_at every time).
//
// Returns ErrNotFound for an unknown, another merchant's or an already
// revoked key, and ErrLastAPIKey for the merchant's last active one.
func (s *Store) APIKeyRevokeByID(ctx context.Context, merchantID, id uuid.UUID) (*APIKey, error) {
	var out *APIKey
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		active, err := apiKeyLockActiveTx(ctx, tx, merchantID)
		if err != nil {
			return err
		}
		k, err := scanAPIKey(tx.QueryRow(ctx, `SELECT `+apiKeyColumns.String()+` FROM api_keys
			WHERE id = $1 AND merchant_id = $2 AND revoked_at IS NULL`, id, merchantID))
		if err != nil {
			return err
		}
		if active <= 1 {
			return ErrLastAPIKey
		}
		out, err = scanAPIKey(tx.QueryRow(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1
			RETURNING `+apiKeyColumns.String(), k.ID))
		return err
	})
	return out, err
}

// APIKeyRotate replaces keys in one transaction: it creates a new key and
// revokes the merchant's key id, or every other active key when id is
// uuid.Nil (a leak whose key is not known). The command for a leaked key.
//
// Returns ErrNotFound for an unknown merchant or key.
func (s *Store) APIKeyRotate(ctx context.Context, merchantID, id uuid.UUID, name *string) (*NewAPIKey, []*APIKey, error) {
	var created *NewAPIKey
	var revoked []*APIKey
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := apiKeyLockActiveTx(ctx, tx, merchantID); err != nil {
			return err
		}
		var err error
		if created, err = apiKeyCreateTx(ctx, tx, merchantID, name); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE api_keys SET revoked_at = now()
			WHERE merchant_id = $1 AND revoked_at IS NULL AND id <> $2 AND ($3::uuid IS NULL OR id = $3)
			RETURNING `+apiKeyColumns.String(), merchantID, created.ID, anyMerchant(id))
		if err != nil {
			return fmt.Errorf("revoking api keys: %w", err)
		}
		revoked, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*APIKey, error) { return scanAPIKey(row) })
		if err != nil {
			return fmt.Errorf("revoking api keys: %w", err)
		}
		if id != uuid.Nil && len(revoked) == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return created, revoked, nil
}

// APIKeyGetByKey returns the active key whose clear text is key (a leaked
// key, say), or ErrNotFound.
func (s *Store) APIKeyGetByKey(ctx context.Context, key string) (*APIKey, error) {
	hash := sha256.Sum256([]byte(key))
	return scanAPIKey(s.Pool.QueryRow(ctx, `SELECT `+apiKeyColumns.String()+` FROM api_keys
		WHERE key_hash = $1 AND revoked_at IS NULL`, hash[:]))
}

// MerchantGetByAPIKey returns the merchant owning a live key, or ErrNotFound
// for an unknown or revoked one. last_used_at is refreshed at most once a
// minute so authentication stays a read on the hot path.
func (s *Store) MerchantGetByAPIKey(ctx context.Context, key string) (*Merchant, error) {
	hash := sha256.Sum256([]byte(key))
	var keyID uuid.UUID
	var lastUsed *time.Time
	var m Merchant
	err := s.Pool.QueryRow(ctx, `SELECT k.id, k.last_used_at, `+merchantColumns.Of("m")+`
		FROM api_keys k JOIN merchants m ON m.id = k.merchant_id
		WHERE k.key_hash = $1 AND k.revoked_at IS NULL`, hash[:]).
		Scan(append([]any{&keyID, &lastUsed}, merchantColumns.dest(&m)...)...)
	if err != nil {
		return nil, notFound(err)
	}
	if lastUsed == nil || time.Since(*lastUsed) > time.Minute {
		// Best effort when the database cannot write (read-only during a
		// failover, out of disk): reads still work then.
		if _, err := s.Pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now() WHERE id = $1`, keyID); err != nil && !Unavailable(err) {
			return nil, fmt.Errorf("touching api key: %w", err)
		}
	}
	return &m, nil
}
