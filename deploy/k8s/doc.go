// Package k8s holds no code: deploy/k8s is the Kubernetes manifests of
// optoutd (StatefulSet, Services, PodDisruptionBudget) and their README.
// The package exists for its tests (package k8s_test), which parse every
// manifest and check the properties the deployment depends on, and run the
// documented commands' flags against the real binary.
package k8s
