// `build-task`: in a Concourse task its settings come from params (environment variables
// named as oci-build-task's); locally, the same settings as flags (--help). `build-task plan`
// and `build-task build-all` do it for a root of image directories. `arguments` are what
// follows the command's name, however it was called: ArgumentParser names the program
// `build-task` (BuildTaskCommandLine's commandName), never argv[0].
import Builder
import Console
import Foundation

func buildTask(_ arguments: [String]) -> Never {
    let environment = ProcessInfo.processInfo.environment
    let directory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    let log = Log.standardError()

    func standardOutput(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    for warning in BuildConfiguration.lookalikeWarnings(environment) { log.info(warning) }
    do {
        switch BuildTaskCommandLine.parseRequest(arguments) {
        case .build(let flags):
            let configuration = try BuildConfiguration(flags: flags, environment: environment, directory: directory)
            let result = try ImageBuild(configuration, log: log, progress: StatusLine()).run()
            log.info("build-task: \(result.digest) in \(configuration.output.path)")
        case .plan(let flags, let graph, let emitPipeline):
            let planner = try ImagePlanner(
                flags: flags, graph: graph, environment: environment, directory: directory, log: log)
            let images = try planner.graph()
            if let emitPipeline {
                let text = try planner.writePipeline(images, to: emitPipeline)
                if emitPipeline == "-" { FileHandle.standardOutput.write(Data(text.utf8)) }
            } else {
                for image in try planner.plan(images) { standardOutput(image.line) }
            }
        case .buildAll(let flags, let graph):
            let planner = try ImagePlanner(
                flags: flags, graph: graph, environment: environment, directory: directory, log: log)
            _ = try planner.buildAll(progress: StatusLine()) { standardOutput($0.line) }
        }
        exit(0)
    } catch {
        log.info("build-task: \(error)")
        exit(1)
    }
}
