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
}

func (e endpoint) addr() string { return net.JoinHostPort(e.host, strconv.Itoa(int(e.port))) }

// errDSN never quotes the DSN: it holds the password.
var errDSN = fmt.Errorf("source.dsn is not a valid MySQL DSN: want user:password@tcp(host:port)/database or mysql://user:password@host:port/database")

// parseDSN reads the Go driver's DSN form, user:password@tcp(host:port)/db, and
// the URL form, mysql://user:password@host:port/db. The database part is
// optional: every mapped table names its database.
func parseDSN(dsn string) (endpoint, error) {
	if strings.HasPrefix(dsn, "mysql://") {
		u, err := url.Parse(dsn)
		if err != nil || u.Host == "" || u.RawQuery != "" {
			return endpoint{}, errDSN
		}
		password, _ := u.User.Password()
		return withHostPort(endpoint{user: u.User.Username(), password: password}, u.Host)
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
	if end < 0 || strings.Contains(rest[end:], "?") {
		return endpoint{}, errDSN
	}
	return withHostPort(endpoint{user: user, password: password}, rest[:end])
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
