// One `check` of the git change detector, for Benchmarks/git-check: prints the versions'
// commits, oldest first, one per line (log lines go to stderr).
//
// usage: GitCheck <uri> <cache-root> <branch> [--since <commit>] [--tag-file <path>] [--] <path>...
import Console
import Foundation
import GitSource

var arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 3 else {
    FileHandle.standardError.write(
        Data("usage: GitCheck <uri> <cache-root> <branch> [--since <commit>] [--tag-file <path>] [--] <path>...\n".utf8)
    )
    exit(2)
}
let uri = arguments.removeFirst()
let cacheRoot = URL(fileURLWithPath: arguments.removeFirst(), isDirectory: true)
let branch = arguments.removeFirst()
var since: SourceChange.Key?
var tagFile: TagFileSpec?
var paths: [String] = []
while !arguments.isEmpty {
    let argument = arguments.removeFirst()
    switch argument {
    case "--since": since = SourceChange.Key(commit: try GitCommitID(arguments.removeFirst()))
    case "--tag-file": tagFile = TagFileSpec(path: arguments.removeFirst())
    case "--":
        paths += arguments
        arguments = []
    default: paths.append(argument)
    }
}
let configuration = GitSourceConfiguration(uri: uri, branch: try GitBranchName(branch), paths: paths, tagFile: tagFile)
let log = Log.standardError(verbose: ProcessInfo.processInfo.environment["GIT_CHECK_DEBUG"] != nil)
do {
    let changes = try ChangeDetector(configuration: configuration, cacheRoot: cacheRoot, log: log).changes(since: since)
    print(changes.map { $0.commit.rawValue + ($0.tagFileValue.map { " " + $0 } ?? "") }.joined(separator: "\n"))
} catch {
    FileHandle.standardError.write(Data("GitCheck: \(error)\n".utf8))
    exit(1)
}
