def setup():
    return None
