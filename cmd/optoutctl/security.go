package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"github.com/optoutd/optoutd/client"
	"github.com/optoutd/optoutd/security"
	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/protobuf/proto"
)

// security turns --cacert/--cert/--key/--token into client options.
func (m *Main) security() ([]client.Option, error) {
	var opts []client.Option
	if m.token != "" {
		opts = append(opts, client.WithToken(m.token))
	}
	if (m.cert == "") != (m.key == "") {
		return nil, errors.New("--cert and --key: give both, or neither")
	}
	if m.caCert == "" && m.cert == "" {
		return opts, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.caCert != "" {
		pem, err := os.ReadFile(m.caCert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert: no PEM certificates in %s", m.caCert)
		}
	}
	if m.cert != "" {
		c, err := tls.LoadX509KeyPair(m.cert, m.key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return append(opts, client.WithTLS(cfg)), nil
}

func (m *Main) tlsCmd() *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl tls init", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	dir := fs.String("dir", "", "directory to write the files into (required; created if missing)")
	hosts := fs.String("hosts", "127.0.0.1,localhost", "comma-separated DNS names and IPs the node certificate is valid for")
	days := fs.Int("days", 365, "validity of the node and client certificates, in days")
	cn := fs.String("client-cn", "admin", "common name of the client certificate (grant it a role with 'optoutctl cert grant')")
	const usage = "optoutctl tls init --dir D [--hosts h1,h2] [--days N] [--client-cn NAME]"
	initCmd := &ffcli.Command{
		Name: "init", ShortUsage: usage, FlagSet: fs,
		ShortHelp: "create a CA, a node certificate (peer and API) and a client certificate, for development and tests",
		Exec: func(_ context.Context, a []string) error {
			if _, err := positional(fs, 0, usage, a); err != nil {
				return err
			}
			if *dir == "" {
				return errors.New("--dir: must be set")
			}
			if *days < 1 || *days > 3650 {
				return fmt.Errorf("--days: %d is outside 1..3650", *days)
			}
			var hs []string
			for _, h := range strings.Split(*hosts, ",") {
				if h = strings.TrimSpace(h); h != "" {
					hs = append(hs, h)
				}
			}
			if len(hs) == 0 {
				return errors.New("--hosts: must name at least one host")
			}
			return tlsInit(m, *dir, hs, *cn, time.Duration(*days)*24*time.Hour)
		},
	}
	return group("tls", "optoutctl tls init --dir D", "certificates for a development or test cluster", initCmd)
}

func tlsInit(m *Main, dir string, hosts []string, cn string, valid time.Duration) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	for _, f := range []string{"ca.pem", "ca-key.pem", "node.pem", "node-key.pem", "client.pem", "client-key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("--dir: %s already exists; refusing to overwrite certificates", filepath.Join(dir, f))
		}
	}
	now := time.Now().Add(-time.Minute)
	ca, err := security.NewCA("optoutd dev CA", now, now.Add(10*365*24*time.Hour))
	if err != nil {
		return err
	}
	if _, _, err := security.WritePair(dir, "ca", ca.CertPEM, ca.KeyPEM); err != nil {
		return err
	}
	nc, nk, err := ca.Issue(security.Leaf{CommonName: "optoutd-node", Hosts: hosts, Server: true, Client: true, NotBefore: now, NotAfter: now.Add(valid)})
	if err != nil {
		return err
	}
	if _, _, err := security.WritePair(dir, "node", nc, nk); err != nil {
		return err
	}
	cc, ck, err := ca.Issue(security.Leaf{CommonName: cn, Client: true, NotBefore: now, NotAfter: now.Add(valid)})
	if err != nil {
		return err
	}
	if _, _, err := security.WritePair(dir, "client", cc, ck); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "wrote %s/{ca,node,client}.pem and keys; node certificate valid for %s\n", dir, strings.Join(hosts, ", "))
	return nil
}

func roleArg(s string) (optoutv1.Role, error) {
	r, err := optoutd.ParseRole(s)
	if err != nil {
		return 0, fmt.Errorf("--role: %q is not reader, writer, auditor or admin", s)
	}
	return optoutv1.Role(r), nil
}

func (m *Main) tokenCmd() *ffcli.Command {
	create := m.nameRoleCmd("token create", "NAME", "create a bearer token (printed once)",
		func(ctx context.Context, c *client.Client, name string, r optoutv1.Role) (proto.Message, error) {
			return c.CreateToken(ctx, name, r)
		})
	lfs := flag.NewFlagSet("optoutctl token list", flag.ContinueOnError)
	lfs.SetOutput(m.Stderr)
	list := &ffcli.Command{
		Name: "list", ShortUsage: "optoutctl token list", FlagSet: lfs, ShortHelp: "list tokens and certificate grants (never the secrets)",
		Exec: func(ctx context.Context, a []string) error {
			if _, err := positional(lfs, 0, "optoutctl token list", a); err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.ListPrincipals(ctx)
			})
		},
	}
	return group("token", "optoutctl token <create|list|revoke>", "manage bearer tokens", create, list, m.revokeCmd("token"))
}

func (m *Main) revokeCmd(parent string) *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl "+parent+" revoke", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	usage := "optoutctl " + parent + " revoke NAME"
	return &ffcli.Command{
		Name: "revoke", ShortUsage: usage, FlagSet: fs, ShortHelp: "revoke a token or certificate grant",
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(fs, 1, usage, a)
			if err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return c.RevokePrincipal(ctx, a[0])
			})
		},
	}
}

func (m *Main) certCmd() *ffcli.Command {
	grant := m.nameRoleCmd("cert grant", "COMMON_NAME", "give client certificates with this common name a role",
		func(ctx context.Context, c *client.Client, name string, r optoutv1.Role) (proto.Message, error) {
			return c.GrantCertificate(ctx, name, r)
		})
	return group("cert", "optoutctl cert <grant|revoke>", "map client certificates to roles", grant, m.revokeCmd("cert"))
}

// nameRoleCmd is a command "optoutctl PATH ARG --role ROLE" that sends one
// name and one role to the cluster with call.
func (m *Main) nameRoleCmd(path, arg, help string,
	call func(context.Context, *client.Client, string, optoutv1.Role) (proto.Message, error)) *ffcli.Command {
	fs := flag.NewFlagSet("optoutctl "+path, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	role := fs.String("role", "", "reader, writer, auditor or admin (required)")
	usage := "optoutctl " + path + " " + arg + " --role ROLE"
	return &ffcli.Command{
		Name: path[strings.LastIndex(path, " ")+1:], ShortUsage: usage, FlagSet: fs, ShortHelp: help,
		Exec: func(ctx context.Context, a []string) error {
			a, err := positional(fs, 1, usage, a)
			if err != nil {
				return err
			}
			r, err := roleArg(*role)
			if err != nil {
				return err
			}
			return m.withClient(ctx, func(ctx context.Context, c *client.Client) (proto.Message, error) {
				return call(ctx, c, a[0], r)
			})
		},
	}
}
