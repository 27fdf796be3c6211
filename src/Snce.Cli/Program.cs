return Snce.Cli.SnceCli.Run(args);
