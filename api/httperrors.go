package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/optoutd/optoutd"
	optoutv1 "github.com/optoutd/optoutd/api/gen/optout/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The errors a curl user meets before a request reaches a handler (no
// Content-Type, a path with no method, a body over the limit) get a Connect
// JSON body that names the problem and the fix, like every other error.
// gRPC clients get the same as gRPC status headers.

// rpcContentTypes are the request content types the Connect, gRPC and
// gRPC-Web handlers accept (by prefix).
var rpcContentTypes = []string{"application/json", "application/proto", "application/connect+", "application/grpc"}

// withRequestErrors answers the requests connect-go would refuse with an
// empty or a misleading response. mux serves everything else.
func withRequestErrors(mux http.Handler) http.Handler {
	known := knownMethods()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if svc, ok := rpcService(r.URL.Path); ok && !strings.HasPrefix(svc, "grpc.") && !known[svc][r.URL.Path] {
			// connect-go and the mux answer a bare 404 ("404 page not
			// found") for a method or service that does not exist.
			unknownPath(w, r)
			return
		}
		if _, ok := rpcService(r.URL.Path); ok && r.Method == http.MethodPost {
			ct := r.Header.Get("Content-Type")
			if !hasAnyPrefix(ct, rpcContentTypes) {
				msg := fmt.Sprintf("Content-Type %q is not supported: send Content-Type: application/json with a JSON body "+
					"(curl -H 'Content-Type: application/json' -d '{...}'), or application/proto, application/grpc", ct)
				if ct == "" {
					msg = "missing Content-Type: send Content-Type: application/json with a JSON body " +
						"(curl -H 'Content-Type: application/json' -d '{...}'), or application/proto, application/grpc"
				}
				w.Header().Set("Accept-Post", "application/json, application/proto")
				writeRPCError(w, r, http.StatusUnsupportedMediaType, "invalid_argument", msg)
				return
			}
			if r.ContentLength > MaxRequestBytes {
				writeRPCError(w, r, http.StatusRequestEntityTooLarge, "invalid_argument", fmt.Sprintf(
					"request body is %d bytes, over the limit of %d bytes (1 MiB): retrying will not help; send less per request "+
						"(CheckBatch takes at most %d checks)", r.ContentLength, MaxRequestBytes, optoutd.MaxBatchChecks))
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// unknownPath answers a path no service serves: unimplemented, naming the
// services and, for a known service, its methods.
func unknownPath(w http.ResponseWriter, r *http.Request) {
	svc, method, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	services := apiServices()
	for _, s := range services {
		if string(s.FullName()) == svc {
			writeRPCError(w, r, http.StatusNotFound, "unimplemented", fmt.Sprintf("%s has no method %q; its methods: %s",
				svc, method, strings.Join(methodNames(s), ", ")))
			return
		}
	}
	names := make([]string, 0, len(services))
	for _, s := range services {
		names = append(names, string(s.FullName()))
	}
	writeRPCError(w, r, http.StatusNotFound, "unimplemented", fmt.Sprintf(
		"no method at %s: call /SERVICE/METHOD, e.g. /optout.v1.OptOutService/Check; services: %s (gRPC reflection lists them all); "+
			"other paths: /healthz, /readyz, /metrics", r.URL.Path, strings.Join(names, ", ")))
}

func methodNames(s protoreflect.ServiceDescriptor) []string {
	out := make([]string, 0, s.Methods().Len())
	for i := 0; i < s.Methods().Len(); i++ {
		out = append(out, string(s.Methods().Get(i).Name()))
	}
	return out
}

// writeRPCError writes an error the caller's protocol understands: gRPC
// status headers for gRPC, else a Connect JSON error body.
func writeRPCError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/grpc") {
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Grpc-Status", grpcStatus[code])
		w.Header().Set("Grpc-Message", url.PathEscape(msg))
		w.WriteHeader(http.StatusOK)
		return
	}
	b, _ := json.Marshal(map[string]string{"code": code, "message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

var grpcStatus = map[string]string{"invalid_argument": "3", "unimplemented": "12"}

// rpcService returns the service of a path like /package.Service/Method.
func rpcService(path string) (string, bool) {
	svc, method, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return svc, ok && strings.Contains(svc, ".") && method != "" && !strings.Contains(method, "/")
}

// knownMethods maps each optout.v1 service to the paths of its methods.
func knownMethods() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, s := range apiServices() {
		paths := map[string]bool{}
		for _, m := range methodNames(s) {
			paths["/"+string(s.FullName())+"/"+m] = true
		}
		out[string(s.FullName())] = paths
	}
	return out
}

// apiServices are the services of every file of the public API.
func apiServices() []protoreflect.ServiceDescriptor {
	var out []protoreflect.ServiceDescriptor
	for _, f := range []protoreflect.FileDescriptor{optoutv1.File_optout_v1_optout_proto, optoutv1.File_optout_v1_enforcement_proto} {
		for i := 0; i < f.Services().Len(); i++ {
			out = append(out, f.Services().Get(i))
		}
	}
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// enumError matches protojson's message for an unknown enum name.
var enumError = regexp.MustCompile(`invalid value for enum field (\w+): (.*)$`)

// explainEnum adds the valid names to protojson's "invalid value for enum
// field state: \"OPTED_OUT\"", looking the field up by its JSON name
// anywhere in m's type.
func explainEnum(m protoreflect.Message, err error) error {
	sub := enumError.FindStringSubmatch(err.Error())
	if sub == nil {
		return err
	}
	ed := findEnum(m.Descriptor(), sub[1], map[protoreflect.FullName]bool{})
	if ed == nil {
		return err
	}
	var names []string
	for i := 0; i < ed.Values().Len(); i++ {
		v := ed.Values().Get(i)
		if v.Number() != 0 { // the zero value is "unspecified", never valid input
			names = append(names, string(v.Name()))
		}
	}
	return fmt.Errorf("%s: %s is not a valid %s; valid values: %s", sub[1], sub[2], ed.Name(), strings.Join(names, ", "))
}

func findEnum(md protoreflect.MessageDescriptor, jsonName string, seen map[protoreflect.FullName]bool) protoreflect.EnumDescriptor {
	if seen[md.FullName()] {
		return nil
	}
	seen[md.FullName()] = true
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		if f.Kind() == protoreflect.EnumKind && (f.JSONName() == jsonName || string(f.Name()) == jsonName) {
			return f.Enum()
		}
	}
	for i := 0; i < fields.Len(); i++ {
		if f := fields.Get(i); f.Kind() == protoreflect.MessageKind {
			if ed := findEnum(f.Message(), jsonName, seen); ed != nil {
				return ed
			}
		}
	}
	return nil
}
