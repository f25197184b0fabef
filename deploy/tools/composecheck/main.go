// composecheck loads a Compose file the way `docker compose config` does — with compose-go, the loader
// Docker Compose itself uses: the Compose Specification schema, interpolation (`${VAR:?message}` fails
// when VAR is unset), merging and normalisation — without a Docker engine or the docker CLI.
//
//	composecheck [--env-file FILE] -f compose.yaml
//
// Exit 0 and the normalised project on stdout when it loads; exit 1 and the loader's error on stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	file := flag.String("f", "compose.yaml", "the Compose file")
	envFile := flag.String("env-file", "", "an env file, as docker compose --env-file")
	flag.Parse()

	options := []cli.ProjectOptionsFn{cli.WithOsEnv, cli.WithName("qunzhu")}
	if *envFile != "" {
		options = append(options, cli.WithEnvFiles(*envFile), cli.WithDotEnv)
	}
	projectOptions, err := cli.NewProjectOptions([]string{*file}, options...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := projectOptions.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := project.MarshalYAML()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}
