// `in DIR`: wiring only. Concourse runs it as /opt/resource/in with
// {"source":…,"version":…,"params":…} on stdin; the version and metadata go to stdout.
import Console
import Foundation
import Resource

ResourceMain.run("in") { input in
    guard CommandLine.arguments.count > 1 else { throw InputError("usage: in <destination directory>") }
    return try In(log: .standardError()).run(input: input, directory: URL(fileURLWithPath: CommandLine.arguments[1]))
}
