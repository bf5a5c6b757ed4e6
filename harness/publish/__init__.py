"""Publishing results: reports, leaderboards, the site, the CI gate, templates and SVG plots."""
