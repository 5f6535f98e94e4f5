package access

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CookieName is the dashboard's session cookie.
const CookieName = "lastgood_session"

// SessionLife is how long a session cookie opens the dashboard after it
// was issued.
const SessionLife = 7 * 24 * time.Hour

// CSRFField is the form field that carries a session's CSRF token.
const CSRFField = "csrf"

var b64 = base64.RawURLEncoding

// A session cookie is
//
//	v2.NAME.ISSUED.NONCE.MAC
//
// with NAME and NONCE in unpadded base64url, ISSUED in Unix seconds, and
// MAC = HMAC-SHA256(key, label, the rest, sha256 of the token's secret).
// The key is lastgood's own (kept in the data directory); the token's sum
// makes a cookie die with its token. The cookie does not hold the token:
// browsers send a cookie to every port of a host, so the apps lastgood
// routes on the same host see it too, and it must not open the API.
func (g *Gate) mint(name string, sum [sha256.Size]byte) string {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	payload := "v2." + b64.EncodeToString([]byte(name)) + "." + strconv.FormatInt(g.now().Unix(), 10) + "." + b64.EncodeToString(nonce)
	return payload + "." + b64.EncodeToString(g.mac("lastgood session", payload, hex.EncodeToString(sum[:])))
}

func (g *Gate) mac(label string, parts ...string) []byte {
	m := hmac.New(sha256.New, g.key)
	m.Write([]byte(label))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// verify returns the identity a session cookie value stands for.
func (g *Gate) verify(value string) (Identity, bool) {
	parts := strings.Split(value, ".")
	if len(parts) != 5 || parts[0] != "v2" {
		return Identity{}, false
	}
	name, err := b64.DecodeString(parts[1])
	if err != nil {
		return Identity{}, false
	}
	issued, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return Identity{}, false
	}
	mac, err := b64.DecodeString(parts[4])
	if err != nil {
		return Identity{}, false
	}
	now := g.now()
	at := time.Unix(issued, 0)
	if now.Sub(at) > SessionLife || at.Sub(now) > time.Minute {
		return Identity{}, false
	}
	var id Identity
	var sum [sha256.Size]byte
	if g.Open() {
		if string(name) != Anonymous {
			return Identity{}, false
		}
		id = Identity{Name: Anonymous, Role: Admin, Via: "cookie"}
	} else {
		tok, ok := g.cfg.Tokens.byName(string(name))
		if !ok {
			return Identity{}, false
		}
		id, sum = Identity{Name: tok.Name, Role: tok.Role, Via: "cookie"}, tok.sum
	}
	want := g.mac("lastgood session", strings.Join(parts[:4], "."), hex.EncodeToString(sum[:]))
	if !hmac.Equal(mac, want) {
		return Identity{}, false
	}
	return id, true
}

// csrf is the CSRF token of a session: bound to the cookie's value, so a
// page that cannot read the dashboard cannot know it.
func (g *Gate) csrf(cookie string) string {
	return hex.EncodeToString(g.mac("lastgood csrf", cookie))
}

// session returns the request's valid session cookie and who it stands for.
func (g *Gate) session(r *http.Request) (string, Identity, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return "", Identity{}, false
	}
	id, ok := g.verify(c.Value)
	return c.Value, id, ok
}

func (g *Gate) setCookie(w http.ResponseWriter, r *http.Request, value string) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: value, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// Session returns the CSRF token that the dashboard's forms must carry
// for this request's session, or "" when the request has no session
// cookie (a script reading the page with a bearer token). Without tokens
// it gives a browser that has no session a new one.
func (g *Gate) Session(w http.ResponseWriter, r *http.Request) string {
	if value, _, ok := g.session(r); ok {
		return g.csrf(value)
	}
	if !g.Open() {
		return ""
	}
	value := g.mint(Anonymous, [sha256.Size]byte{})
	g.setCookie(w, r, value)
	return g.csrf(value)
}

// Login checks a token given in the dashboard's address and, when it is
// right, sets a session cookie for it.
func (g *Gate) Login(w http.ResponseWriter, r *http.Request, secret string) (Identity, bool) {
	tok, ok := g.cfg.Tokens.Lookup(secret)
	if !ok {
		return Identity{}, false
	}
	g.setCookie(w, r, g.mint(tok.Name, tok.sum))
	return Identity{Name: tok.Name, Role: tok.Role, Via: "cookie"}, true
}

// hmacEqual compares two MACs in constant time.
func hmacEqual(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }
