import BatonCommandLine

#if canImport(Glibc)
    import Glibc
#endif

// `baton`: thin on purpose. Each subcommand parses its words, calls a library, prints.
let status = await Baton.run(Array(CommandLine.arguments.dropFirst()))
exit(status.rawValue)
