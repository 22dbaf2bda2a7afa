import ArgumentParser
struct Latents: ParsableCommand {}
struct Reconstruct: ParsableCommand {}
struct Info: ParsableCommand {}
