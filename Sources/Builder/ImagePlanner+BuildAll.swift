import Console
import Foundation
import OCI

/// `build-task build-all`: every image of the plan, built in order.
extension ImagePlanner {
    /// One image of a build-all run.
    public struct Built: Sendable {
        public var planned: PlannedImage
        public var result: ImageBuild.Result

        /// `built <name> <digest>` or `reused <name> <digest>`.
        public var line: String {
            "\(result.reused ? "reused" : "built") \(planned.image.name) \(result.digest)"
        }
    }

    /// Builds every image in plan order, each as `build-task` builds one (`ImageBuild`):
    /// unchanged images are reused by `SKIP_IF_PUBLISHED` without buildah; with `--push` each
    /// goes to `<repository>/<name>:<image tag>` before the images built on it start, which
    /// is how they find it. `report` gets each image as it is done.
    public func buildAll(progress: StatusLine = StatusLine(enabled: false), report: (Built) -> Void = { _ in }) throws
        -> [Built]
    {
        let graph = try graph()
        let planned = try plan(graph)
        for image in planned { log.info("plan: \(image.line)") }
        try checkDependentsFollow(graph, planned)
        var built: [Built] = []
        for image in planned {
            let result = try naming(image.image) {
                try ImageBuild(
                    configuration(for: image.image.name), log: prefixed(image.image.name), environment: environment,
                    runner: runner, progress: progress
                ).run()
            }
            let done = Built(planned: image, result: result)
            report(done)
            built.append(done)
        }
        return built
    }

    /// An image built `FROM` an image this run builds (or whose tag is not in the registry
    /// yet) sees it only through the tag its `FROM` names: refused up front, before anything
    /// is built, unless that tag is the one this run pushes.
    func checkDependentsFollow(_ graph: ImageGraph, _ planned: [PlannedImage]) throws {
        let building = Set(planned.filter(\.builds).map(\.image.name))
        let push = try configuration(for: planned[0].image.name).push
        for image in planned {
            for (dependency, references) in (graph.references[image.image.name] ?? [:]).sorted(by: { $0.key < $1.key })
            {
                for reference in references
                where building.contains(dependency) || image.decision == .build(.missing(reference)) {
                    guard let parsed = try? ImageReference(reference), parsed.digest == nil else { continue }
                    let tag = parsed.tag ?? .latest
                    guard push else {
                        throw Failure(
                            "\(image.image.path) is built FROM \(reference), which only --push (PUSH=true) points at this run's \(dependency)"
                        )
                    }
                    guard tag == imageTag else {
                        throw Failure(
                            "\(image.image.path) is built FROM \(reference), but this run pushes \(dependency) as :\(imageTag); "
                                + "set --image-tag \(tag) (IMAGE_TAG), or the FROM line's tag to \(imageTag)")
                    }
                }
            }
        }
    }
}
