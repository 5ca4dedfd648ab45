package main

import (
	"crypto/ed25519"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
)

func (a *app) auditVerifyCommand() *cobra.Command {
	var pubFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [--public-key FILE]",
		Short: "Check the audit chain: any changed, removed, inserted or reordered entry",
		Long: `Recompute every entry's hash and link, compare the end of the log with its
recorded head, and (with --public-key) check every signature. Each problem
names the entry. Exits 1 if the log has been tampered with.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var pub ed25519.PublicKey
			if pubFile != "" {
				var err error
				if pub, err = loadAuditPublicKey(pubFile); err != nil {
					return err
				}
			}
			store, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			entries, headSeq, headHash, err := latch.ReadAudit(cmd.Context(), store)
			if err != nil {
				return err
			}
			problems := latch.VerifyAudit(entries, headSeq, headHash, pub)
			if asJSON {
				out := struct {
					Entries  int                  `json:"entries"`
					Head     int64                `json:"head_seq"`
					Signed   bool                 `json:"signatures_checked"`
					Problems []latch.AuditProblem `json:"problems"`
				}{len(entries), headSeq, pub != nil, problems}
				if out.Problems == nil {
					out.Problems = []latch.AuditProblem{}
				}
				if err := writeJSON(a.stdout, out); err != nil {
					return err
				}
			} else {
				for _, p := range problems {
					fmt.Fprintf(a.stdout, "entry %d: %s: %s\n", p.Seq, p.Kind, p.Message)
				}
				if len(problems) == 0 {
					signed := "signatures not checked (no --public-key)"
					if pub != nil {
						signed = "every signature valid"
					}
					fmt.Fprintf(a.stdout, "ok: %d entries, chain unbroken up to its head (%d), %s\n", len(entries), headSeq, signed)
				}
			}
			if len(problems) > 0 {
				return fmt.Errorf("the audit log has %d problem(s)", len(problems))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pubFile, "public-key", "", "ed25519 public key (PEM) the entries must be signed with")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
