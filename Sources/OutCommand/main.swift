// `out DIR`: wiring only. Concourse runs it as /opt/resource/out with
// {"source":…,"params":…} on stdin, DIR holding the build's artifacts; the version goes to stdout.
import Console
import Foundation
import Resource

ResourceMain.run("out") { input in
    guard CommandLine.arguments.count > 1 else { throw InputError("usage: out <build directory>") }
    return try Out(log: .standardError()).run(input: input, directory: URL(fileURLWithPath: CommandLine.arguments[1]))
}
