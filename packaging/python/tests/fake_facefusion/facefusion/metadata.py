METADATA = {'name': 'FaceFusion', 'version': '3.8.1'}


def get(key):
    return METADATA.get(key)
