package mysql

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// endpoint is where and as whom to connect.
type endpoint struct {
	host           string
	port           uint16
	user, password string
	// tls is the DSN's tls parameter: "" or false, true (verify the server
	// against the system's roots), skip-verify.
	tls string
}

func (e endpoint) addr() string { return net.JoinHostPort(e.host, strconv.Itoa(int(e.port))) }

// errDSN never quotes the DSN: it holds the password.
var errDSN = fmt.Errorf("source.dsn is not a valid MySQL DSN: want user:password@tcp(host:port)/database or mysql://user:password@host:port/database")

// parseDSN reads the Go driver's DSN form, user:password@tcp(host:port)/db, and
// the URL form, mysql://user:password@host:port/db. The database part is
// optional: every mapped table names its database. Of the parameters, tls
// (true, skip-verify, false) is read; source.mysql.tls says more.
func parseDSN(dsn string) (endpoint, error) {
	if strings.HasPrefix(dsn, "mysql://") {
		u, err := url.Parse(dsn)
		if err != nil || u.Host == "" {
			return endpoint{}, errDSN
		}
		password, _ := u.User.Password()
		e, err := withHostPort(endpoint{user: u.User.Username(), password: password}, u.Host)
		if err != nil {
			return e, err
		}
		return withParams(e, u.RawQuery)
	}
	at := strings.LastIndex(dsn, "@tcp(")
	if at < 0 {
		if strings.Contains(dsn, "@unix(") {
			return endpoint{}, fmt.Errorf("source.dsn: unix sockets are not supported (binlog streaming needs TCP): use user:password@tcp(host:port)/database")
		}
		return endpoint{}, errDSN
	}
	user, password, _ := strings.Cut(dsn[:at], ":")
	rest := dsn[at+len("@tcp("):]
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return endpoint{}, errDSN
	}
	e, err := withHostPort(endpoint{user: user, password: password}, rest[:end])
	if err != nil {
		return e, err
	}
	_, query, _ := strings.Cut(rest[end:], "?")
	return withParams(e, query)
}

// withParams reads the DSN's parameters: only tls is known.
func withParams(e endpoint, query string) (endpoint, error) {
	params, err := url.ParseQuery(query)
	if err != nil {
		return endpoint{}, errDSN
	}
	for name, values := range params {
		if name != "tls" || len(values) != 1 {
			return endpoint{}, fmt.Errorf("source.dsn: parameter %q is not supported (tls=true|skip-verify|false is; source.mysql.tls has the rest)", name)
		}
		switch values[0] {
		case "true", "skip-verify", "false":
			e.tls = values[0]
		default:
			return endpoint{}, fmt.Errorf("source.dsn: tls=%q: want true, skip-verify or false (or a source.mysql.tls block)", values[0])
		}
	}
	return e, nil
}

func withHostPort(e endpoint, hostPort string) (endpoint, error) {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		host, port = hostPort, "3306"
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || host == "" || e.user == "" {
		return endpoint{}, errDSN
	}
	e.host, e.port = host, uint16(n)
	return e, nil
}
