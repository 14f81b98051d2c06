package provider

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/storage"
)

// Signing algorithms Latchkey issues tokens with.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
)

// rsaKeyBits is the size of generated RSA keys.
const rsaKeyBits = 2048

// KeyStore persists signing keys.
type KeyStore interface {
	PublishedSigningKeys(ctx context.Context, now time.Time) ([]*storage.SigningKey, error)
	AddSigningKey(ctx context.Context, key *storage.SigningKey, retireUntil time.Time) error
}

type loadedKey struct {
	kid       string
	algorithm string
	createdAt time.Time
	private   crypto.Signer // *rsa.PrivateKey or *ecdsa.PrivateKey
	public    crypto.PublicKey
	active    bool
}

// KeySet keeps the signing keys in memory, decrypted once when loaded, so
// that signing a token never touches the database or decrypts anything. It
// reloads from the database periodically and when it meets an unknown kid,
// so that a key rotated by another process or replica is picked up.
type KeySet struct {
	store  KeyStore
	sealer *Sealer
	now    func() time.Time

	// reloadInterval limits reloads triggered by unknown key ids.
	reloadInterval time.Duration
	// activationDelay is how long a new key is only published before it
	// signs; see activeKey.
	activationDelay time.Duration

	mu       sync.RWMutex
	active   map[string]*loadedKey   // by algorithm
	previous map[string][]*loadedKey // published retired keys by algorithm, newest first
	byKID    map[string]*loadedKey
	jwks     []byte
	loadedAt time.Time

	// reloading lets one request at a time reload stale keys.
	reloading sync.Mutex
}

// NewKeySet returns an empty key set. Call Load before use.
func NewKeySet(store KeyStore, systemSecret []byte) (*KeySet, error) {
	key, err := DeriveKey(systemSecret, purposeSigningKeys)
	if err != nil {
		return nil, err
	}
	sealer, err := NewSealer(key)
	if err != nil {
		return nil, err
	}
	return &KeySet{store: store, sealer: sealer, now: time.Now, reloadInterval: minReloadInterval,
		activationDelay: DefaultKeyActivationDelay}, nil
}

// Load reads the published keys from the database and decrypts them.
func (k *KeySet) Load(ctx context.Context) error {
	rows, err := k.store.PublishedSigningKeys(ctx, k.now())
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}

	active := map[string]*loadedKey{}
	previous := map[string][]*loadedKey{}
	byKID := map[string]*loadedKey{}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, row := range rows {
		der, err := k.sealer.Open(row.PrivateKeySealed, []byte(row.KID))
		if err != nil {
			return fmt.Errorf("decrypt signing key %s (is the system secret the one it was created with?): %w", row.KID, err)
		}
		private, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("parse signing key %s: %w", row.KID, err)
		}
		signer, ok := private.(crypto.Signer)
		if !ok {
			return fmt.Errorf("signing key %s has unsupported type %T", row.KID, private)
		}

		loaded := &loadedKey{kid: row.KID, algorithm: row.Algorithm, createdAt: row.CreatedAt, private: signer,
			public: signer.Public(), active: row.Active}
		byKID[row.KID] = loaded
		if row.Active {
			active[row.Algorithm] = loaded
		} else {
			previous[row.Algorithm] = append(previous[row.Algorithm], loaded) // rows come newest first
		}

		var jwk jose.JSONWebKey
		if err := json.Unmarshal(row.PublicJWK, &jwk); err != nil {
			return fmt.Errorf("parse public key %s: %w", row.KID, err)
		}
		set.Keys = append(set.Keys, jwk)
	}

	document, err := json.Marshal(set)
	if err != nil {
		return err
	}

	k.mu.Lock()
	k.active, k.previous, k.byKID, k.jwks, k.loadedAt = active, previous, byKID, document, k.now()
	k.mu.Unlock()
	return nil
}

// EnsureActive creates an active key for each algorithm that has none, and
// returns the algorithms it created keys for. When replicas start together
// and two create a key for one algorithm, the later key wins and the earlier
// one stays published for overlap, like a rotated key, so that what the
// other replica signed with it keeps verifying.
func (k *KeySet) EnsureActive(ctx context.Context, overlap time.Duration, algorithms ...string) ([]string, error) {
	if err := k.Load(ctx); err != nil {
		return nil, err
	}

	var created []string
	for _, algorithm := range algorithms {
		k.mu.RLock()
		_, ok := k.active[algorithm]
		k.mu.RUnlock()
		if ok {
			continue
		}
		if _, err := k.Rotate(ctx, algorithm, overlap); err != nil {
			return created, err
		}
		created = append(created, algorithm)
	}
	return created, nil
}

// Rotate generates a new active key for algorithm. The key it replaces stays
// published for overlap, which must be at least the longest lifetime of a
// token that key signed, so that those tokens keep verifying.
func (k *KeySet) Rotate(ctx context.Context, algorithm string, overlap time.Duration) (string, error) {
	private, err := generateKey(algorithm)
	if err != nil {
		return "", err
	}

	public := jose.JSONWebKey{Key: private.Public(), Algorithm: algorithm, Use: "sig"}
	thumbprint, err := public.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	public.KeyID = base64.RawURLEncoding.EncodeToString(thumbprint)
	publicJSON, err := json.Marshal(public)
	if err != nil {
		return "", err
	}

	der, err := x509.MarshalPKCS8PrivateKey(private)
	if err != nil {
		return "", err
	}
	now := k.now().UTC()
	key := &storage.SigningKey{
		KID:              public.KeyID,
		Algorithm:        algorithm,
		PublicJWK:        publicJSON,
		PrivateKeySealed: k.sealer.Seal(der, []byte(public.KeyID)),
		Active:           true,
		CreatedAt:        now,
	}
	if err := k.store.AddSigningKey(ctx, key, now.Add(overlap)); err != nil {
		return "", fmt.Errorf("store signing key: %w", err)
	}
	return public.KeyID, k.Load(ctx)
}

func generateKey(algorithm string) (crypto.Signer, error) {
	switch algorithm {
	case AlgRS256:
		return rsa.GenerateKey(rand.Reader, rsaKeyBits)
	case AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("unsupported signing algorithm %q: use RS256 or ES256", algorithm)
	}
}

// JWKS returns the JSON Web Key Set document of every published public key.
func (k *KeySet) JWKS() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.jwks
}

// DefaultKeyActivationDelay is how long a newly rotated key is published
// before it signs: two periods of the provider's periodic key reload, so
// that every replica publishes it, and resource servers can fetch it,
// before any token names it.
const DefaultKeyActivationDelay = 2 * time.Minute

// SetActivationDelay changes how long a new key is only published before it
// signs. Zero makes it sign at once; tests use that.
func (k *KeySet) SetActivationDelay(delay time.Duration) {
	k.mu.Lock()
	k.activationDelay = delay
	k.mu.Unlock()
}

// activeKey returns the key that signs new tokens with algorithm: the
// active key once it is older than the activation delay, and until then
// the newest retired key that is still published. A first key, with no
// predecessor, signs at once.
func (k *KeySet) activeKey(algorithm string) (*loadedKey, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, ok := k.active[algorithm]
	if !ok {
		return nil, fmt.Errorf("no active %s signing key: run 'latchkey keys rotate --algorithm %s'", algorithm, algorithm)
	}
	if k.now().Sub(key.createdAt) < k.activationDelay && len(k.previous[algorithm]) > 0 {
		return k.previous[algorithm][0], nil
	}
	return key, nil
}

// minReloadInterval limits reloads triggered by unknown key ids, so that
// tokens with made-up kids cannot hammer the database.
const minReloadInterval = 10 * time.Second

// lookup returns a published key by kid, reloading once if it is unknown.
func (k *KeySet) lookup(ctx context.Context, kid string) (*loadedKey, error) {
	k.mu.RLock()
	key, ok := k.byKID[kid]
	stale := k.now().Sub(k.loadedAt) > k.reloadInterval
	k.mu.RUnlock()
	if ok {
		return key, nil
	}

	if stale {
		if err := k.Load(ctx); err != nil {
			return nil, err
		}
		k.mu.RLock()
		key, ok = k.byKID[kid]
		k.mu.RUnlock()
		if ok {
			return key, nil
		}
	}
	return nil, errors.New("unknown signing key id")
}

// Keys lists the published keys' ids, algorithms and whether each is active.
func (k *KeySet) Keys() []KeyInfo {
	k.mu.RLock()
	defer k.mu.RUnlock()
	infos := make([]KeyInfo, 0, len(k.byKID))
	for _, key := range k.byKID {
		infos = append(infos, KeyInfo{KID: key.kid, Algorithm: key.algorithm, Active: key.active})
	}
	return infos
}

// KeyInfo describes a published key.
type KeyInfo struct {
	KID       string `json:"kid"`
	Algorithm string `json:"alg"`
	Active    bool   `json:"active"`
}

// JWKSMaxAge is the maximum age of the key set the JWKS endpoint serves.
// An older set is reloaded first, so a key rotated by another process is
// published within seconds.
const JWKSMaxAge = 5 * time.Second

// ReloadIfOlder reloads the keys when they were loaded more than maxAge
// ago. While one caller reloads, the others go on with the keys they have.
func (k *KeySet) ReloadIfOlder(ctx context.Context, maxAge time.Duration) error {
	k.mu.RLock()
	stale := k.now().Sub(k.loadedAt) > maxAge
	k.mu.RUnlock()
	if !stale || !k.reloading.TryLock() {
		return nil
	}
	defer k.reloading.Unlock()
	return k.Load(ctx)
}

// RunReloader reloads the keys every interval until ctx ends, so that a key
// rotated with the CLI is used without a restart.
func (k *KeySet) RunReloader(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := k.Load(ctx); err != nil && ctx.Err() == nil {
				logger.ErrorContext(ctx, "signing key reload failed", "error", err)
			}
		}
	}
}

// sha256Sum is the hash used for at_hash and c_hash with RS256 and ES256.
func sha256Sum(in []byte) []byte {
	sum := sha256.Sum256(in)
	return sum[:]
}
