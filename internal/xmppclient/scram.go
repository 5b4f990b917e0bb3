package xmppclient

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// scram is the client side of SCRAM-SHA-1 without channel binding (RFC 5802).
// Names are not SASLprep'd: test accounts use ASCII.
type scram struct {
	user, password, cnonce string
	clientFirstBare        string
	authMessage            string
	saltedPassword         []byte
}

func newSCRAM(user, password, cnonce string) *scram {
	return &scram{user: user, password: password, cnonce: cnonce}
}

const gs2Header = "n,,"

func (s *scram) clientFirst() string {
	name := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s.user)
	s.clientFirstBare = "n=" + name + ",r=" + s.cnonce
	return gs2Header + s.clientFirstBare
}

// clientFinal answers the server-first message.
func (s *scram) clientFinal(serverFirst string) (string, error) {
	attrs := parseSCRAM(serverFirst)
	nonce, salt64, iterStr := attrs["r"], attrs["s"], attrs["i"]
	if !strings.HasPrefix(nonce, s.cnonce) || len(nonce) == len(s.cnonce) {
		return "", fmt.Errorf("server nonce %q does not extend ours", nonce)
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return "", fmt.Errorf("salt: %v", err)
	}
	iter, err := strconv.Atoi(iterStr)
	if err != nil || iter < 1 || iter > 1<<20 {
		return "", fmt.Errorf("iteration count %q", iterStr)
	}
	s.saltedPassword, err = pbkdf2.Key(sha1.New, s.password, salt, iter, sha1.Size)
	if err != nil {
		return "", err
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(gs2Header)) + ",r=" + nonce
	s.authMessage = s.clientFirstBare + "," + serverFirst + "," + withoutProof
	clientKey := hmacSHA1(s.saltedPassword, "Client Key")
	storedKey := sha1.Sum(clientKey)
	sig := hmacSHA1(storedKey[:], s.authMessage)
	proof := make([]byte, len(clientKey))
	for i := range clientKey {
		proof[i] = clientKey[i] ^ sig[i]
	}
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// verifyServerFinal checks the server's signature ("v=...").
func (s *scram) verifyServerFinal(serverFinal string) error {
	attrs := parseSCRAM(serverFinal)
	if e, ok := attrs["e"]; ok {
		return fmt.Errorf("server error %q", e)
	}
	got, err := base64.StdEncoding.DecodeString(attrs["v"])
	if err != nil || len(got) == 0 {
		return fmt.Errorf("server final %q has no verifier", serverFinal)
	}
	want := hmacSHA1(hmacSHA1(s.saltedPassword, "Server Key"), s.authMessage)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return errors.New("server signature does not verify")
	}
	return nil
}

func parseSCRAM(msg string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Split(msg, ",") {
		if len(f) >= 2 && f[1] == '=' {
			m[f[:1]] = f[2:]
		}
	}
	return m
}

func hmacSHA1(key []byte, msg string) []byte {
	h := hmac.New(sha1.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}
