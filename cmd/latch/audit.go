package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/internal/atomicfile"
)

func (a *app) auditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The tamper-evident audit log, and proof from CloudTrail",
		Long: `Every request, decision, grant and revocation is an entry in a hash-chained
audit log in the grant database: each entry holds the previous entry's
SHA-256, and, with --audit-key on the server or daemon, an ed25519
signature. History stays after grants end.`,
	}
	cmd.AddCommand(a.auditLsCommand(), a.auditExportCommand(), a.auditKeygenCommand(), a.auditVerifyCommand(), a.auditProofCommand(), a.auditReconcileCommand())
	return cmd
}

type auditListOptions struct {
	since, who, grant string
	limit             int
	json              bool
}

func (o *auditListOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.since, "since", "", "only entries this recent: a duration (24h) or a time (RFC 3339)")
	f.StringVar(&o.who, "who", "", "only entries by this actor")
	f.StringVar(&o.grant, "grant", "", "only entries about this grant")
	f.IntVar(&o.limit, "limit", 0, "at most this many (0: no limit)")
}

// filter turns the flags into an AuditFilter, naming the flag at fault.
func (o *auditListOptions) filter(now time.Time) (latch.AuditFilter, error) {
	f := latch.AuditFilter{Actor: o.who, Limit: o.limit}
	if o.limit < 0 {
		return f, latch.Invalidf("limit", "%d is negative", o.limit)
	}
	if o.since != "" {
		since, err := parseSince(o.since, now)
		if err != nil {
			return f, err
		}
		f.Since = since
	}
	if o.grant != "" {
		id, err := latch.ParseGrantID(o.grant)
		if err != nil {
			return f, err
		}
		f.GrantID = id
	}
	return f, nil
}

// parseSince accepts a duration back from now or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, latch.Invalidf("since", "%q is neither a duration (24h) nor a time (2026-11-23T10:00:00Z)", s)
}

func (a *app) auditLsCommand() *cobra.Command {
	var o auditListOptions
	cmd := &cobra.Command{
		Use:     "ls",
		Short:   "List audit entries, oldest first",
		Example: "  latch audit ls --since 24h --who alice@example.com\n  latch audit ls --grant g-3f9a0c1d2e4b5a69 --json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, err := a.auditEntries(cmd.Context(), &o)
			if err != nil {
				return err
			}
			if o.json { // a log: one entry a line, as export writes it
				return exportJSONLines(a.stdout, entries)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tTARGET\tGRANT\tREQUEST\tDETAILS")
			for _, e := range entries {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, latch.FormatExpiry(e.At), esc(e.Actor), esc(e.Action), esc(e.Target),
					dash(esc(e.GrantID)), dash(esc(e.RequestID)), details(e.Details))
			}
			return tw.Flush()
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON: one entry a line")
	a.addFlags(cmd, dbFlags)
	return cmd
}

func (a *app) auditExportCommand() *cobra.Command {
	var o auditListOptions
	var out string
	cmd := &cobra.Command{
		Use:   "export [--out FILE]",
		Short: "Write the audit log as JSON lines, for a SIEM or S3",
		Long: `Write audit entries as JSON lines, one entry per line, hashes and signatures
included, so the chain can be verified again wherever it lands.`,
		Example: `  latch audit export --since 24h | aws s3 cp - s3://audit/latch/$(date +%F).jsonl
  latch audit export --grant g-3f9a0c1d2e4b5a69 --out g-3f9a0c1d2e4b5a69.jsonl`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, err := a.auditEntries(cmd.Context(), &o)
			if err != nil {
				return err
			}
			w := a.stdout
			if out != "" && out != "-" {
				f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			return exportJSONLines(w, entries)
		},
	}
	o.flags(cmd)
	cmd.Flags().StringVar(&out, "out", "-", "file to write (- for standard output)")
	deprecatedAlias(cmd, "output", "out")
	commandLineOnly(cmd, "out") // LATCH_OUT would be every command's --out
	a.addFlags(cmd, dbFlags)
	return cmd
}

func exportJSONLines(w io.Writer, entries []latch.AuditEntry) error {
	enc := json.NewEncoder(w)
	for _, e := range entries {
		if err := enc.Encode(latchhttp.ToAuditEntryJSON(e)); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) auditEntries(ctx context.Context, o *auditListOptions) ([]latch.AuditEntry, error) {
	f, err := o.filter(a.clock.Now())
	if err != nil {
		return nil, err
	}
	store, err := a.store(ctx)
	if err != nil {
		return nil, err
	}
	return store.AuditEntries(ctx, f)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// details shows an entry's details on one line: key=value, sorted, each
// escaped as [esc] does.
func details(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k, v := range d {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, esc(k)+"="+esc(d[k]))
	}
	return strings.Join(parts, " ")
}

func (a *app) auditKeygenCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Make an ed25519 key pair for signing audit entries (never overwrites)",
		Example: `  latch audit keygen --out /etc/latch/audit.pem
  latch server --policy policy.yaml --aws-auth --aws-account 123456789012 --audit-key /etc/latch/audit.pem
  latch audit verify --public-key /etc/latch/audit.pem.pub`,
		Long: `Write an ed25519 private key (PKCS #8 PEM, mode 0600) to FILE and its public
key to FILE.pub. Give the private key to the server or daemon with
--audit-key; give the public key to 'latch audit verify --public-key'.
Refuses if FILE or FILE.pub exists: a replaced key leaves every entry it
signed unverifiable.`,
		RunE: func(*cobra.Command, []string) error {
			if out == "" {
				return latch.Invalidf("out", "--out FILE is required")
			}
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			privDER, _ := x509.MarshalPKCS8PrivateKey(priv)
			pubDER, _ := x509.MarshalPKIXPublicKey(pub)
			// The public key first: if the private key is the one in the
			// way, the public key just written is removed again.
			if err := atomicfile.WriteNew(out+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
				return keyExists("out", err)
			}
			if err := atomicfile.WriteNew(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
				os.Remove(out + ".pub")
				return keyExists("out", err)
			}
			fmt.Fprintf(a.stdout, "Wrote %s (private, 0600) and %s.pub.\n", out, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "where to write the private key")
	commandLineOnly(cmd, "out")
	return cmd
}

// keyExists turns the error of creating a key file that exists into a
// refusal naming the file: latch never overwrites a key.
func keyExists(field string, err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok && errors.Is(err, fs.ErrExist) {
		return latch.Invalidf(field, "%s already exists, and latch never overwrites a key: remove it first if you mean to replace it, or choose another path", pe.Path)
	}
	return err
}

// loadAuditKey reads an ed25519 private key (PKCS #8 PEM).
func loadAuditKey(path string) (ed25519.PrivateKey, error) {
	block, err := readPEM(path, "audit-key")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	priv, ok := k.(ed25519.PrivateKey)
	if err != nil || !ok {
		return nil, latch.Invalidf("audit-key", "%s is not an ed25519 private key in PKCS #8 PEM ('latch audit keygen' makes one)", path)
	}
	return priv, nil
}

// loadAuditPublicKey reads an ed25519 public key (PKIX PEM).
func loadAuditPublicKey(path string) (ed25519.PublicKey, error) {
	block, err := readPEM(path, "public-key")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	pub, ok := k.(ed25519.PublicKey)
	if err != nil || !ok {
		return nil, latch.Invalidf("public-key", "%s is not an ed25519 public key in PEM", path)
	}
	return pub, nil
}

func readPEM(path, flag string) (*pem.Block, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, latch.Invalidf(flag, "read %s: %v", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, latch.Invalidf(flag, "%s holds no PEM block", path)
	}
	return block, nil
}
