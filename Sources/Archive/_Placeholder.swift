// placeholder: the Archive module arrives with issue 3
