// Package docs holds the manual. Its test checks that every relative link in
// the repository's Markdown, and every alert's runbook, leads to a file and a
// heading that exist.
package docs

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// pages are the Markdown files whose links are checked, relative to this folder.
func pages(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{"*.md", "../*.md"} {
		found, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, found...)
	}
	if len(out) < 2 {
		t.Fatalf("found only %v: is the test run from docs/?", out)
	}
	return out
}

var (
	link    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
)

// document is a Markdown file's links (with their line) and its headings' anchors.
type document struct {
	links   []docLink
	anchors map[string]bool
}

type docLink struct {
	line   int
	target string
}

func readDocument(t *testing.T, path string) document {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc := document{anchors: map[string]bool{}}
	seen := map[string]int{}
	fenced := false
	scanner := bufio.NewScanner(f)
	for n := 1; scanner.Scan(); n++ {
		line := scanner.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			anchor := slug(m[1])
			if k := seen[anchor]; k > 0 {
				doc.anchors[anchor+"-"+strconv.Itoa(k)] = true
			} else {
				doc.anchors[anchor] = true
			}
			seen[anchor]++
		}
		for _, m := range link.FindAllStringSubmatch(withoutCode(line), -1) {
			doc.links = append(doc.links, docLink{line: n, target: m[1]})
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	return doc
}

// withoutCode drops inline code spans, whose brackets are not links.
func withoutCode(line string) string {
	parts := strings.Split(line, "`")
	var b strings.Builder
	for i := 0; i < len(parts); i += 2 {
		b.WriteString(parts[i])
	}
	return b.String()
}

// slug is the anchor GitHub gives a heading: lower case, punctuation dropped
// (hyphens and underscores kept), spaces as hyphens.
func slug(heading string) string {
	heading = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestLinksLeadSomewhere(t *testing.T) {
	docs := map[string]document{}
	read := func(path string) document {
		path = filepath.Clean(path)
		if d, ok := docs[path]; ok {
			return d
		}
		d := readDocument(t, path)
		docs[path] = d
		return d
	}
	checked := 0
	for _, page := range pages(t) {
		for _, l := range read(page).links {
			if strings.Contains(l.target, "://") || strings.HasPrefix(l.target, "mailto:") {
				continue
			}
			checked++
			file, anchor, _ := strings.Cut(l.target, "#")
			target := page
			if file != "" {
				target = filepath.Join(filepath.Dir(page), file)
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s:%d: link to %s: no such file", page, l.line, l.target)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(target, ".md") && !read(target).anchors[anchor] {
				t.Errorf("%s:%d: link to %s: %s has no heading with anchor #%s", page, l.line, l.target, target, anchor)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d relative links checked: is the link pattern still right?", checked)
	}
}

// Every alert names its runbook: the section of operating.md that says what to do.
func TestAlertsHaveRunbooks(t *testing.T) {
	data, err := os.ReadFile("../monitoring/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "https://github.com/cdc-dev/cdc/blob/main/docs/operating.md#"
	operating := readDocument(t, "operating.md")
	alerts := regexp.MustCompile(`(?m)^\s*- alert: (\w+)$`).FindAllStringSubmatch(string(data), -1)
	runbooks := regexp.MustCompile(`(?m)^\s*runbook_url: "([^"]*)"$`).FindAllStringSubmatch(string(data), -1)
	if len(alerts) == 0 || len(alerts) != len(runbooks) {
		t.Fatalf("%d alerts and %d runbook_url annotations in alerts.yaml: want one each", len(alerts), len(runbooks))
	}
	for i, a := range alerts {
		url := runbooks[i][1]
		anchor, ok := strings.CutPrefix(url, prefix)
		if !ok || anchor != slug(a[1]) {
			t.Errorf("alert %s: runbook_url %q, want %s%s", a[1], url, prefix, slug(a[1]))
			continue
		}
		if !operating.anchors[anchor] {
			t.Errorf("alert %s: operating.md has no section %q (a heading \"### %s\")", a[1], anchor, a[1])
		}
	}
}

func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Snapshot again when the log is gone": "snapshot-again-when-the-log-is-gone",
		"`cdc verify`: topics against tables": "cdc-verify-topics-against-tables",
		"MySQL and MariaDB (5.7, 8.x)":        "mysql-and-mariadb-57-8x",
		"CDCTimeToDataLossCritical":           "cdctimetodatalosscritical",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}
