STATE = {}


def init_item(key, value):
    STATE[key] = value


def set_item(key, value):
    STATE[key] = value


def get_item(key):
    return STATE.get(key)
