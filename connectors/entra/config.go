package entra

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/learnsync/learnsync/connectors"
)

// Ways the connector authenticates to Entra ID (the auth setting).
const (
	AuthClientSecret      = "client_secret"
	AuthClientCertificate = "client_certificate"
	AuthManagedIdentity   = "managed_identity"
	AuthDefault           = "default"
)

// Values of the user_type setting.
const (
	UserTypeMember = "member"
	UserTypeGuest  = "guest"
	UserTypeAll    = "all"
)

// Defaults of the endpoints and of the request timeout.
const (
	DefaultGraphURL       = "https://graph.microsoft.com/v1.0"
	DefaultAuthorityHost  = "https://login.microsoftonline.com/"
	DefaultRequestTimeout = 60 * time.Second
)

// Config is the configuration block of an entra source.
type Config struct {
	// TenantID is the directory (tenant) id or a verified domain name.
	TenantID string `yaml:"tenant_id"`
	// Auth is client_secret, client_certificate, managed_identity or default
	// (azidentity's DefaultAzureCredential).
	Auth string `yaml:"auth"`
	// ClientID is the app registration's application id; with
	// managed_identity it selects a user-assigned identity.
	ClientID     string            `yaml:"client_id"`
	ClientSecret connectors.Secret `yaml:"client_secret"`
	// ClientCertificateFile is a PEM file holding the certificate and its
	// unencrypted private key; relative to the config file.
	ClientCertificateFile string `yaml:"client_certificate_file"`
	// GraphURL is the Graph API base including the version.
	GraphURL string `yaml:"graph_url"`
	// AuthorityHost is the Entra login host (https only: MSAL refuses
	// anything else).
	AuthorityHost string `yaml:"authority_host"`
	// CAFile holds extra PEM roots trusted for Graph and the token endpoint.
	CAFile string `yaml:"ca_file"`
	// ServicePrincipalID limits the source to the users and groups assigned
	// to this enterprise application; assigned groups expand to members.
	ServicePrincipalID string `yaml:"service_principal_id"`
	// UserType is member, guest or all.
	UserType string `yaml:"user_type"`
	// TransitiveGroups makes a group's members include the members of its
	// nested groups.
	TransitiveGroups bool `yaml:"transitive_groups"`
	// ExtraAttributes are user properties added to $select for the rules
	// (sources[].map, scope.when): onPremisesExtensionAttributes,
	// employeeOrgData, extension_<appid>_<name>, country, ... Graph returns
	// most properties only when selected.
	ExtraAttributes []string `yaml:"extra_attributes"`
	// RequestTimeout bounds one HTTP attempt (not the waits between
	// throttled retries).
	RequestTimeout time.Duration `yaml:"request_timeout"`
}

// graphProperty is the shape of a Graph property name (extension
// attributes included: extension_<appid>_<name>).
var graphProperty = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,127}$`)

// DefaultConfig returns a Config with the defaults filled in.
func DefaultConfig() *Config {
	return &Config{
		Auth:           AuthClientSecret,
		GraphURL:       DefaultGraphURL,
		AuthorityHost:  DefaultAuthorityHost,
		UserType:       UserTypeMember,
		RequestTimeout: DefaultRequestTimeout,
	}
}

var (
	tenantPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*$`)
)

// Validate returns every problem of the block at once. Messages never
// contain the client secret.
func (c *Config) Validate(opts connectors.Options) []error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, connectors.Errorf(path, format, args...))
	}

	for i, a := range c.ExtraAttributes {
		if !graphProperty.MatchString(a) {
			add(fmt.Sprintf("extra_attributes[%d]", i), "%q is not a Graph property name", a)
		}
	}
	switch c.Auth {
	case AuthClientSecret, AuthClientCertificate, AuthManagedIdentity, AuthDefault:
	default:
		add("auth", "must be one of client_secret, client_certificate, managed_identity, default; got %q", c.Auth)
	}
	appAuth := c.Auth == AuthClientSecret || c.Auth == AuthClientCertificate

	switch {
	case c.TenantID == "" && appAuth:
		add("tenant_id", "is required with auth: %s", c.Auth)
	case c.TenantID == "":
	case !tenantPattern.MatchString(c.TenantID):
		add("tenant_id", "must be a directory id (GUID) or a domain name")
	case isMultiTenant(c.TenantID):
		add("tenant_id", "%q is not a tenant; app-only access needs the directory id", c.TenantID)
	}

	switch {
	case c.ClientID == "" && appAuth:
		add("client_id", "is required with auth: %s", c.Auth)
	case c.ClientID != "" && c.Auth == AuthDefault:
		add("client_id", "is not used with auth: default; set AZURE_CLIENT_ID in the environment instead")
	case c.ClientID != "" && !idPattern.MatchString(c.ClientID):
		add("client_id", "must be an application id (GUID)")
	}

	switch {
	case c.Auth == AuthClientSecret && c.ClientSecret == "":
		add("client_secret", "is required with auth: client_secret (or client_secret_file)")
	case c.Auth != AuthClientSecret && c.ClientSecret != "":
		add("client_secret", "is set but auth is %s", c.Auth)
	}

	switch {
	case c.Auth == AuthClientCertificate && c.ClientCertificateFile == "":
		add("client_certificate_file", "is required with auth: client_certificate")
	case c.Auth != AuthClientCertificate && c.ClientCertificateFile != "":
		add("client_certificate_file", "is set but auth is %s", c.Auth)
	case c.ClientCertificateFile != "":
		if _, _, err := loadCertificate(connectors.ResolvePath(opts.BaseDir, c.ClientCertificateFile)); err != nil {
			add("client_certificate_file", "%v", err)
		}
	}

	if err := checkGraphURL(c.GraphURL); err != nil {
		add("graph_url", "%v", err)
	}
	if err := checkAuthority(c.AuthorityHost); err != nil {
		add("authority_host", "%v", err)
	}
	if c.CAFile != "" {
		if _, err := connectors.NewHTTPClient(connectors.ResolvePath(opts.BaseDir, c.CAFile), 0); err != nil {
			add("ca_file", "%v", err)
		}
	}
	if c.ServicePrincipalID != "" && !idPattern.MatchString(c.ServicePrincipalID) {
		add("service_principal_id", "must be the object id (GUID) of the enterprise application")
	}
	switch c.UserType {
	case UserTypeMember, UserTypeGuest, UserTypeAll:
	default:
		add("user_type", "must be one of member, guest, all; got %q", c.UserType)
	}
	if c.RequestTimeout < time.Second || c.RequestTimeout > 10*time.Minute {
		add("request_timeout", "must be between 1s and 10m; got %s", c.RequestTimeout)
	}
	return errs
}

func isMultiTenant(t string) bool {
	switch strings.ToLower(t) {
	case "common", "organizations", "consumers":
		return true
	}
	return false
}

func checkGraphURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("is required")
	}
	if err := connectors.CheckURL(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw)
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must not have a query or fragment")
	}
	if strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("must include the API version, e.g. %s", DefaultGraphURL)
	}
	return nil
}

// checkAuthority accepts https URLs only, loopback included: MSAL refuses
// any other authority.
func checkAuthority(raw string) error {
	if raw == "" {
		return fmt.Errorf("is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q: must be an absolute https URL (the token library refuses plain http)", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must not have a query or fragment")
	}
	return nil
}

// loadCertificate reads a PEM file with a certificate chain and its private
// key. Errors never quote the file's content.
func loadCertificate(path string) ([]*x509.Certificate, crypto.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read certificate: %w", err)
	}
	certs, key, err := azidentity.ParseCertificates(data, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: need a PEM certificate and an unencrypted private key: %v", path, err)
	}
	return certs, key, nil
}
