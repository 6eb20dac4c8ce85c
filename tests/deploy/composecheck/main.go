// composecheck FILE - load a Compose file with compose-go (the Compose
// Specification's reference loader), schema validation and consistency
// checks on, no environment variables; exit 1 on any error. On success
// it prints what tests/deploy/test_compose.sh checks further, one fact a
// line, tab-separated, services in name order:
//
//	service NAME IMAGE
//	cmd     NAME ARG...
//	env     NAME KEY
//	stop    NAME SECONDS      (stop_grace_period, when set)
//	replicas NAME N           (deploy.replicas, when set)
//	dep     NAME OTHER CONDITION
//	health  NAME              (a healthcheck that is not disabled)
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, "composecheck:", err)
	os.Exit(1)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck FILE")
		os.Exit(2)
	}
	path, err := filepath.Abs(os.Args[1])
	if err != nil {
		fail(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		fail(err)
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: data}},
		Environment: types.Mapping{},
	}
	project, err := loader.LoadWithContext(context.Background(), details,
		func(o *loader.Options) {
			o.SkipValidation = false
			o.SkipConsistencyCheck = false
			o.SkipInterpolation = false
			o.SetProjectName("kascade", true)
		})
	if err != nil {
		fail(err)
	}
	for _, name := range sortedKeys(project.Services) {
		s := project.Services[name]
		fmt.Printf("service\t%s\t%s\n", name, s.Image)
		if len(s.Command) > 0 {
			fmt.Printf("cmd\t%s\t%s\n", name, strings.Join(s.Command, "\t"))
		}
		for _, k := range sortedKeys(s.Environment) {
			fmt.Printf("env\t%s\t%s\n", name, k)
		}
		if s.StopGracePeriod != nil {
			fmt.Printf("stop\t%s\t%d\n", name,
				int64(time.Duration(*s.StopGracePeriod)/time.Second))
		}
		if s.Deploy != nil && s.Deploy.Replicas != nil {
			fmt.Printf("replicas\t%s\t%d\n", name, *s.Deploy.Replicas)
		}
		for _, d := range sortedKeys(s.DependsOn) {
			fmt.Printf("dep\t%s\t%s\t%s\n", name, d, s.DependsOn[d].Condition)
		}
		if s.HealthCheck != nil && !s.HealthCheck.Disable {
			fmt.Printf("health\t%s\n", name)
		}
	}
}
