import Foundation
import Yams

extension ImagePlanner {
    /// A Concourse pipeline with a source-keyed `slipway` resource per image (keyed on its
    /// directory, tagged `{short_ref}` and `{branch}`) and a job per image: it gets its
    /// resource (trigger), each in-graph dependency with `passed:` its job (trigger), runs
    /// build-task on the directory (`SKIP_IF_PUBLISHED`, the build args) and puts the image.
    /// Jobs of images that do not depend on each other run in parallel on the workers.
    ///
    /// Variables as in `ci/pipelines`: `((slipway-image))`, `((git-uri))`, `((branch))`,
    /// `((git-private-key))`, `((registry-username))`, `((registry-password))`.
    public func pipeline(_ graph: ImageGraph) throws -> String {
        guard checkoutPrefix != nil else {
            throw Failure(
                "--emit-pipeline needs the root in a git checkout: each resource is keyed on its image's directory there"
            )
        }
        let names = Dictionary(
            uniqueKeysWithValues: graph.images.map { ($0.name, $0.name.replacingOccurrences(of: "/", with: "-")) })
        if Set(names.values).count != names.count {
            throw Failure(
                "two image directories give one pipeline name once / becomes -: \(names.keys.sorted().joined(separator: ", "))"
            )
        }
        var resources: [Node] = []
        var jobs: [Node] = []
        for image in graph.order.compactMap(graph.image) {
            let configuration = try configuration(for: image.name)
            let name = names[image.name] ?? image.name
            warnAboutTagsThePipelineDoesNotPush(image, graph)
            resources.append(PipelineNodes.resource(name, image: image, configuration: configuration))
            let dependencies = (graph.dependencies[image.name] ?? []).map { names[$0] ?? $0 }
            jobs.append(PipelineNodes.job(name, image: image, configuration: configuration, dependencies: dependencies))
        }
        let pipeline = PipelineNodes.map([
            (
                "resource_types",
                PipelineNodes.list([
                    PipelineNodes.map([
                        ("name", .string("slipway")), ("type", .string("registry-image")),
                        ("source", PipelineNodes.slipwayImage),
                    ])
                ])
            ),
            ("resources", PipelineNodes.list(resources)),
            ("jobs", PipelineNodes.list(jobs)),
        ])
        let header = """
            # Written by `build-task plan --emit-pipeline`: one image per directory of \(rootLabel), each
            # built when its directory changes and after the images it is built FROM (passed:).
            # Variables: ((slipway-image)), ((git-uri)), ((branch)), ((git-private-key)),
            # ((registry-username)), ((registry-password)).

            """
        let body = try Yams.serialize(node: pipeline, width: -1)
        return header + body
    }

    /// The pipeline's puts tag the commit and the branch: a FROM naming another tag would not follow.
    func warnAboutTagsThePipelineDoesNotPush(_ image: GraphImage, _ graph: ImageGraph) {
        for (dependency, references) in (graph.references[image.name] ?? [:]).sorted(by: { $0.key < $1.key }) {
            for reference in references where !reference.contains("@") && !reference.hasSuffix(":((branch))") {
                log.info(
                    "warning: \(image.path) is built FROM \(reference), but the pipeline tags \(dependency) with its commit and ((branch)); "
                        + "give that tag as ((branch)), e.g. --build-arg BASE_TAG='((branch))'")
            }
        }
    }

    /// Writes ``pipeline(_:)`` to `file` (`-`: standard output is the caller's).
    public func writePipeline(_ graph: ImageGraph, to file: String) throws -> String {
        let text = try pipeline(graph)
        if file != "-" {
            let url = file.hasPrefix("/") ? URL(fileURLWithPath: file) : directory.appendingPathComponent(file)
            try Data(text.utf8).write(to: url, options: .atomic)
            log.info("wrote \(url.path): \(graph.images.count) images, \(graph.images.count) jobs")
        }
        return text
    }
}

/// The YAML nodes of an emitted pipeline: a source-keyed resource and a job per image.
enum PipelineNodes {
    static func map(_ pairs: [(String, Node)]) -> Node { Node(pairs.map { (.string($0.0), $0.1) }) }
    static func flowMap(_ pairs: [(String, Node)]) -> Node {
        Node(pairs.map { (.string($0.0), $0.1) }, Yams.Tag.implicit, .flow)
    }
    static func list(_ items: [Node], flow: Bool = false) -> Node {
        Node(items, Yams.Tag.implicit, flow ? .flow : .any)
    }
    static var yes: Node { .scalar(true.represented()) }
    static var slipwayImage: Node { flowMap([("repository", .string("((slipway-image))"))]) }

    /// The image's resource: keyed on its directory, tagged with the commit and the branch.
    static func resource(_ name: String, image: GraphImage, configuration: BuildConfiguration) -> Node {
        var source: [(String, Node)] = [
            ("repository", .string(image.repository)),
            ("username", .string("((registry-username))")),
            ("password", .string("((registry-password))")),
        ]
        if configuration.registryInsecure { source.append(("insecure", yes)) }
        source += [
            (
                "git",
                flowMap([
                    ("uri", .string("((git-uri))")), ("branch", .string("((branch))")),
                    ("paths", list([.string(image.path + "/")], flow: true)),
                    ("private_key", .string("((git-private-key))")),
                ])
            ),
            ("tags", list([.string("{short_ref}"), .string("{branch}")], flow: true)),
        ]
        return map([("name", .string(name)), ("type", .string("slipway")), ("source", map(source))])
    }

    /// The image's job: its resource and each in-graph dependency (`passed:` its job), then
    /// build-task on the directory, then the put.
    static func job(_ name: String, image: GraphImage, configuration: BuildConfiguration, dependencies: [String])
        -> Node
    {
        var gets: [Node] = [
            map([("get", .string(name)), ("trigger", yes), ("params", flowMap([("image", .string("skip"))]))])
        ]
        for dependency in dependencies {
            gets.append(
                map([
                    ("get", .string(dependency)), ("passed", list([.string(dependency)], flow: true)), ("trigger", yes),
                    ("params", flowMap([("image", .string("skip")), ("source", Node.scalar(false.represented()))])),
                ]))
        }
        let put = map([("put", .string(name)), ("params", flowMap([("image", .string("image/oci"))]))])
        let fetch = gets.count == 1 ? gets : [map([("in_parallel", list(gets))])]
        return map([
            ("name", .string(name)),
            ("plan", list(fetch + [buildTask(name, image: image, configuration: configuration), put])),
        ])
    }

    static func buildTask(_ name: String, image: GraphImage, configuration: BuildConfiguration) -> Node {
        var params: [(String, Node)] = [
            ("CONTEXT", .string("source/source/" + image.path)),
            ("SKIP_IF_PUBLISHED", .string(image.repository)),
        ]
        for (key, value) in configuration.buildArgs.sorted(by: { $0.key < $1.key }) {
            params.append(("BUILD_ARG_" + key, .string(value)))
        }
        for (key, value) in configuration.labels.sorted(by: { $0.key < $1.key }) {
            params.append(("LABEL_" + key, .string(value)))
        }
        if let target = configuration.target { params.append(("TARGET", .string(target))) }
        if !configuration.platforms.isEmpty {
            params.append(
                ("IMAGE_PLATFORM", .string(configuration.platforms.map(\.description).joined(separator: ","))))
        }
        params += [
            ("REGISTRY_USERNAME", .string("((registry-username))")),
            ("REGISTRY_PASSWORD", .string("((registry-password))")),
        ]
        if configuration.registryInsecure { params.append(("REGISTRY_INSECURE", .string("true"))) }
        return map([
            ("task", .string("build")),
            ("privileged", yes),
            ("input_mapping", flowMap([("source", .string(name))])),
            (
                "config",
                map([
                    ("platform", .string("linux")),
                    ("image_resource", flowMap([("type", .string("registry-image")), ("source", slipwayImage)])),
                    ("inputs", list([flowMap([("name", .string("source"))])])),
                    ("outputs", list([flowMap([("name", .string("image"))])])),
                    ("caches", list([flowMap([("path", .string("cache"))])])),
                    ("params", map(params)),
                    ("run", flowMap([("path", .string("build-task"))])),
                ])
            ),
        ])
    }
}

extension Node {
    /// A plain string scalar.
    static func string(_ text: String) -> Node { .scalar(text.represented()) }
}
