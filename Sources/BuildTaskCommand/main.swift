// `build-task`: wiring only. In a Concourse task its settings come from params (environment
// variables named as oci-build-task's); locally, the same settings as flags (--help).
import Builder
import Foundation

let flags = BuildFlags.parseOrExit()
do {
    _ = try BuildConfiguration(flags: flags, environment: ProcessInfo.processInfo.environment,
                               directory: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
    FileHandle.standardError.write(Data("build-task: the settings are valid, but building is not available in this build of Slipway yet (see the README's Status)\n".utf8))
    exit(2)
} catch {
    FileHandle.standardError.write(Data("build-task: \(error)\n".utf8))
    exit(1)
}
