package main

import (
	"bufio"
	"cmp"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
)

func (a *app) auditVerifyCommand() *cobra.Command {
	var pubFile, headFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [--public-key FILE] [--head FILE|-]",
		Short: "Check the audit chain: any changed, removed, inserted or reordered entry",
		Long: `Recompute every entry's hash and link, compare the end of the log with its
recorded head, and (with --public-key) check the signature of every entry
and of the head. Each problem names the entry. Exits 1 if the log has been
tampered with.

The signed head stops anyone without the key moving the head back after
cutting entries off the end, but not putting back a head latch signed
before. --head checks the log against a head kept outside the database:
latch logs one on each append (JSON logs), as the line
  {"msg":"` + broker.MsgAuditAppended + `",…,"audit_head":{"seq":…,"hash":"…","signature":"…"}}
--head reads such lines, text before a line's first "{" (a syslog prefix)
ignored and lines without a head skipped, and uses the one with the
highest seq; a bare {"seq":…,"hash":"…","signature":"…"} works too. The log
must reach that head, with the same hash there; it may have grown since.`,
		Example: `  latch audit verify --public-key /etc/latch/audit.pem.pub
  grep '"audit_head"' /var/log/latch.json | latch audit verify --public-key audit.pem.pub --head -`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var pub ed25519.PublicKey
			if pubFile != "" {
				var err error
				if pub, err = loadAuditPublicKey(pubFile); err != nil {
					return err
				}
			}
			var kept *latch.AuditHead
			if headFile != "" {
				h, err := a.readKeptHead(headFile)
				if err != nil {
					return err
				}
				kept = &h
			}
			store, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			entries, head, err := latch.ReadAudit(cmd.Context(), store)
			if err != nil {
				return err
			}
			problems := latch.VerifyAudit(entries, head, pub)
			if kept != nil {
				problems = append(problems, latch.VerifyAuditAgainst(entries, head, *kept, pub)...)
				slices.SortStableFunc(problems, func(a, b latch.AuditProblem) int { return cmp.Compare(a.Seq, b.Seq) })
			}
			if asJSON {
				out := struct {
					Entries  int                  `json:"entries"`
					Head     int64                `json:"head_seq"`
					Signed   bool                 `json:"signatures_checked"`
					Kept     *int64               `json:"kept_head_seq,omitempty"`
					Problems []latch.AuditProblem `json:"problems"`
				}{Entries: len(entries), Head: head.Seq, Signed: pub != nil, Problems: problems}
				if kept != nil {
					out.Kept = &kept.Seq
				}
				if out.Problems == nil {
					out.Problems = []latch.AuditProblem{}
				}
				if err := writeJSON(a.stdout, out); err != nil {
					return err
				}
			} else {
				for _, p := range problems {
					fmt.Fprintf(a.stdout, "entry %d: %s: %s\n", p.Seq, p.Kind, esc(p.Message))
				}
				if len(problems) == 0 {
					signed := "signatures not checked (no --public-key)"
					if pub != nil {
						signed = "every signature valid, the head's too"
					}
					against := "not checked against a head kept elsewhere (no --head)"
					if kept != nil {
						against = fmt.Sprintf("and it reaches the head kept elsewhere (entry %d)", kept.Seq)
					}
					fmt.Fprintf(a.stdout, "ok: %d entries, chain unbroken up to its head (%d), %s; %s\n", len(entries), head.Seq, signed, against)
				}
			}
			if len(problems) > 0 {
				return fmt.Errorf("the audit log has %d problem(s)", len(problems))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pubFile, "public-key", "", "ed25519 public key (PEM) the entries and the head must be signed with")
	cmd.Flags().StringVar(&headFile, "head", "", "a head kept elsewhere, the log must reach: JSON log lines latch wrote, or {seq, hash, signature} (- for standard input)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	a.addFlags(cmd, dbFlags)
	return cmd
}

// keptHeadJSON is a head as latch logs it (see [latch.AuditHead.LogValue]).
type keptHeadJSON struct {
	Seq       *int64  `json:"seq"`
	Hash      *string `json:"hash"`
	Signature string  `json:"signature"`
}

// readKeptHead reads --head: the head with the highest seq among the
// file's lines, each a JSON log line with "audit_head" or a bare head.
func (a *app) readKeptHead(path string) (latch.AuditHead, error) {
	var r io.Reader = a.stdin
	name := "standard input"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return latch.AuditHead{}, latch.Invalidf("head", "read %s: %v", path, err)
		}
		defer f.Close()
		r, name = f, path
	}
	var best latch.AuditHead
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20) // log lines can be long; a head line is short
	for n := 1; sc.Scan(); n++ {
		h, ok, err := parseKeptHead(sc.Text())
		if err != nil {
			return latch.AuditHead{}, latch.Invalidf("head", "line %d of %s: %v", n, name, err)
		}
		switch {
		case !ok:
		case !found || h.Seq > best.Seq:
			best, found = h, true
		case h.Seq == best.Seq && h.Hash != best.Hash:
			return latch.AuditHead{}, latch.Invalidf("head", "%s holds two heads for entry %d, with different hashes: give the lines of one latch database", name, h.Seq)
		}
	}
	if err := sc.Err(); err != nil {
		return latch.AuditHead{}, latch.Invalidf("head", "read %s: %v", name, err)
	}
	if !found {
		return latch.AuditHead{}, latch.Invalidf("head", `%s holds no audit head: want the JSON log lines latch writes on each append ("msg":%q, with "audit_head"), or {"seq":…,"hash":"…","signature":"…"}`,
			name, broker.MsgAuditAppended)
	}
	return best, nil
}

// parseKeptHead reads one line: ok is false for a line that holds no head
// (another log line), and err says what is wrong with one that does.
func parseKeptHead(line string) (h latch.AuditHead, ok bool, err error) {
	i := strings.IndexByte(line, '{')
	if i < 0 {
		return h, false, nil
	}
	var v struct {
		Head     *keptHeadJSON `json:"audit_head"`
		PrevHash *string       `json:"prev_hash"`
		keptHeadJSON
	}
	if json.Unmarshal([]byte(line[i:]), &v) != nil {
		return h, false, nil
	}
	kh := v.Head
	if kh == nil {
		if v.PrevHash != nil {
			return h, false, fmt.Errorf("this is an audit entry ('latch audit export'), not a head; give the log lines latch wrote after appends, or a head")
		}
		kh = &v.keptHeadJSON
	}
	if kh.Seq == nil || kh.Hash == nil {
		return h, false, nil
	}
	h = latch.AuditHead{Seq: *kh.Seq, Hash: *kh.Hash, Signature: kh.Signature}
	if b, err := hex.DecodeString(h.Hash); err != nil || len(b) != 32 || strings.ToLower(h.Hash) != h.Hash {
		return h, false, fmt.Errorf("the head's hash %q is not 64 lowercase hex digits (a SHA-256)", h.Hash)
	}
	if h.Seq < 1 {
		return h, false, fmt.Errorf("the head's seq is %d; an entry's seq is 1 or more", h.Seq)
	}
	return h, true, nil
}
