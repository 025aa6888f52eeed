"""What every layer above models/ shares and that is not stream processing: settings,
clock, topic registry, codecs and the replay. Nothing here may load Faust, so that the
SQL sink, the report and the notifier start without it (README: Layout)."""
