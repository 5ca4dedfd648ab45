package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sshca"
)

// sshCAOptions are the flags that name latch's SSH CA keys.
type sshCAOptions struct {
	keys           []string
	passphraseFile string
}

func (o *sshCAOptions) flags(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&o.keys, "ssh-ca-key", nil,
		"SSH CA private key file (mode 0600); repeat to rotate: the first signs, all are trusted")
	cmd.Flags().StringVar(&o.passphraseFile, "ssh-ca-passphrase-file", "", "file holding the CA keys' passphrase, if they are encrypted")
}

// load returns the CA, or nil when no key is configured.
func (o *sshCAOptions) load() (*sshca.CA, error) {
	if len(o.keys) == 0 {
		return nil, nil
	}
	pass, err := readPassphrase(o.passphraseFile)
	if err != nil {
		return nil, err
	}
	var ca *sshca.CA
	if pass != nil {
		ca, err = sshca.LoadCAWithPassphrase(pass, o.keys...)
	} else {
		ca, err = sshca.LoadCA(o.keys...)
	}
	if err != nil {
		return nil, latch.Invalidf("ssh-ca-key", "%s", latch.ErrorMessage(err))
	}
	return ca, nil
}

// readPassphrase reads --ssh-ca-passphrase-file without its final newline;
// nil when no file is named.
func readPassphrase(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, latch.Invalidf("ssh-ca-passphrase-file", "%v", err)
	}
	return bytes.TrimRight(b, "\r\n"), nil
}

func (a *app) sshCACommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ssh-ca",
		Short: "Manage latch's SSH certificate authority",
		Long: `latch can act as an SSH user CA: for a grant whose rule says
ssh: {method: certificate}, the server signs the caller's public key for the
grant's window, from the grant's address only, for the rule's principals,
each bound to the grant's instance (LOGIN@INSTANCE_ID). Instances trust the
CA through sshd's TrustedUserCAKeys and accept only certificates naming
their own ID through AuthorizedPrincipalsFile (see README "The CA" for the
user data); no user keys live on them.

Rotate by generating a new key and listing it first:
  latch server --ssh-ca-key new.key --ssh-ca-key old.key ...
Both are then trusted (publish both with 'latch ssh-ca pubkey'); drop the
old one once instances have the new line and old certificates have expired.`,
	}
	var o sshCAOptions
	var out string
	keygen := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Create a new ed25519 CA key, mode 0600 (never overwrites)",
		Example: `  latch ssh-ca keygen --out /etc/latch/ssh-ca
  latch ssh-ca keygen --out /etc/latch/ssh-ca-2 --ssh-ca-passphrase-file /etc/latch/ssh-ca.pass   # encrypted
  latch ssh-ca pubkey --ssh-ca-key /etc/latch/ssh-ca`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The file was once an argument; it still works, as --out does.
			if len(args) == 1 {
				if out != "" && out != args[0] {
					return latch.Invalidf("out", "--out %s and the argument %s name different files: give --out only", out, args[0])
				}
				out = args[0]
				fmt.Fprintf(a.stderr, "latch: 'ssh-ca keygen FILE' is deprecated; use 'ssh-ca keygen --out %s'\n", out)
			}
			if out == "" {
				return latch.Invalidf("out", "--out FILE is required: where to write the CA's private key")
			}
			pass, err := readPassphrase(o.passphraseFile)
			if err != nil {
				return err
			}
			if pass != nil {
				err = sshca.GenerateKeyWithPassphrase(out, pass)
			} else {
				err = sshca.GenerateKey(out)
			}
			if err != nil {
				return keyExists("out", err)
			}
			fmt.Fprintf(a.stderr, "Wrote %s. Publish its public key with: latch ssh-ca pubkey --ssh-ca-key %s\n", out, out)
			return nil
		},
	}
	keygen.Flags().StringVar(&out, "out", "", "where to write the CA's private key")
	commandLineOnly(keygen, "out")
	keygen.Flags().StringVar(&o.passphraseFile, "ssh-ca-passphrase-file", "", "encrypt the key with the passphrase in this file")
	var po sshCAOptions
	pubkey := &cobra.Command{
		Use:   "pubkey --ssh-ca-key FILE [--ssh-ca-key OLD]",
		Short: "Print the CA's public keys: the contents of sshd's TrustedUserCAKeys file",
		Example: `  latch ssh-ca pubkey --ssh-ca-key /etc/latch/ssh-ca > trusted-user-ca-keys.pem
  # on each instance, the user data in README "The CA": it installs these
  # lines as TrustedUserCAKeys and lists USER@<instance ID> in
  # AuthorizedPrincipalsFile, so the instance takes only its own certificates`,
		RunE: func(*cobra.Command, []string) error {
			ca, err := po.load()
			if err != nil {
				return err
			}
			if ca == nil {
				return latch.Invalidf("ssh-ca-key", "name the CA key: --ssh-ca-key FILE (or LATCH_SSH_CA_KEY)")
			}
			_, err = a.stdout.Write(ca.TrustedUserCAKeys())
			return err
		},
	}
	po.flags(pubkey)
	cmd.AddCommand(keygen, pubkey)
	return cmd
}
