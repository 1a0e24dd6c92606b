PROCESS_STATE = 'pending'


def set_process_state(state):
    global PROCESS_STATE
    PROCESS_STATE = state


def is_checking():
    return PROCESS_STATE == 'checking'


def is_processing():
    return PROCESS_STATE == 'processing'


def is_stopping():
    return PROCESS_STATE == 'stopping'


def is_pending():
    return PROCESS_STATE == 'pending'


def start():
    set_process_state('processing')


def end():
    set_process_state('pending')
