from onestop.streams.cli import app

app(prog_name="onestop")
