"""scribbleseg.pfa"""
