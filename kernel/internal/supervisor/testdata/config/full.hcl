# plugins.hcl: every field set, two plugins.

plugin "gamification" {
  path               = "bin/plugins/gamification"
  version            = "0.1.0"
  sha256             = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
  enabled_by_default = true
  config = {
    points_per_lesson = 10
    label             = "XP"
    ratio             = 1.5
    levels            = [100, 250, 500]
    badges            = { first_lesson = "Beginner", streak = null }
  }
  limits {
    max_concurrent_requests = 128
    request_timeout         = "1m30s"
    db_connections          = 10

    max_streams                 = 5000
    max_streams_per_institution = 250
    stream_idle_timeout         = "30s"
    stream_max_duration         = "2h"
    storage_bytes               = "500GiB"
    storage_object_bytes        = 100000000
  }
}

plugin "courses" {
  path    = "/opt/edulure/plugins/courses"
  version = "1.2.3-rc.1+build.5"
  sha256  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
}
