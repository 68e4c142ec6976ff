package sources

import "strings"

// Statement is the statement at sql[start:end] without the blanks and
// comments before it (--, # and /* */) or the semicolon after it, and the line
// it starts on: how a migration's statement is named in messages.
func Statement(sql string, start, end int) (text string, line int) {
	rest := sql[start:end]
	for {
		trimmed := strings.TrimLeft(rest, " \t\r\n")
		switch {
		case strings.HasPrefix(trimmed, "--"), strings.HasPrefix(trimmed, "#"):
			_, after, _ := strings.Cut(trimmed, "\n")
			rest = after
		case strings.HasPrefix(trimmed, "/*"):
			_, after, _ := strings.Cut(trimmed, "*/")
			rest = after
		default:
			at := end - len(trimmed)
			return strings.TrimSuffix(strings.TrimSpace(trimmed), ";"), strings.Count(sql[:at], "\n") + 1
		}
	}
}
