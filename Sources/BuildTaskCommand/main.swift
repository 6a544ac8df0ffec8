// `build-task`: wiring only. In a Concourse task its settings come from params (environment
// variables named as oci-build-task's); locally, the same settings as flags (--help).
import Builder
import Console
import Foundation

let flags = BuildTaskCommandLine.parseOrExit().flags
do {
    let configuration = try BuildConfiguration(flags: flags, environment: ProcessInfo.processInfo.environment,
                                               directory: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
    let result = try ImageBuild(configuration, log: .standardError(), progress: StatusLine()).run()
    FileHandle.standardError.write(Data("build-task: \(result.digest) in \(configuration.output.path)\n".utf8))
    exit(0)
} catch {
    FileHandle.standardError.write(Data("build-task: \(error)\n".utf8))
    exit(1)
}
