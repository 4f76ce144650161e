plugin "Gamification" {
  path    = "bin/plugins/gamification"
  version = "v0.1.0"
  sha256  = "abc"
}
