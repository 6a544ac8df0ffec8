// `check`: wiring only. Concourse runs it as /opt/resource/check with
// {"source":…,"version":…} on stdin; the versions go to stdout, logs to stderr.
import Console
import Resource

ResourceMain.run("check") { input in
    try Check(log: .standardError()).run(input: input)
}
